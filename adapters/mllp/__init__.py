"""MLLP transport: framing (sans-IO), an asyncio listener with limits and TLS, and a blocking sender.

The transport knows frames, not HL7: the engine hands the listener a handler that turns one message into
its ACKs. See docs/mllp.md for the options, edge cases and limitations.
"""
from adapters.mllp.client import MllpClient, MllpConnectionClosed, MllpError, MllpTimeout
from adapters.mllp.framing import END, START, FrameDecoder, FrameTooLarge, FramingError, frame
from adapters.mllp.server import (
    Handler,
    MllpLimits,
    MllpServer,
    MllpStats,
    Peer,
    client_ssl_context,
    server_ssl_context,
)

__all__ = [
    "END",
    "START",
    "FrameDecoder",
    "FrameTooLarge",
    "FramingError",
    "Handler",
    "MllpClient",
    "MllpConnectionClosed",
    "MllpError",
    "MllpLimits",
    "MllpServer",
    "MllpStats",
    "MllpTimeout",
    "Peer",
    "client_ssl_context",
    "frame",
    "server_ssl_context",
]
