"""A blocking MLLP sender for the CLI and tools: one persistent connection, one message at a time.

``exchange`` sends one framed message and waits for its acknowledgement(s). How many come back depends on
the HL7 acknowledgement mode the *sent* message asks for (HL7 v2.5 section 2.9):

* original mode (MSH-15 and MSH-16 empty): one application ACK (AA / AE / AR);
* enhanced mode (MSH-15 or MSH-16 valued): first the accept ACK (CA / CE / CR) if MSH-15 asks for one,
  then, after a CA, the application ACK if MSH-16 asks for one on success (empty, AL or SU).

So the client reads one ACK, and a second one when the first is a CA and MSH-16 is empty, AL or SU. When
both MSH-15 and MSH-16 are NE nothing is ever answered and ``exchange`` returns at once. Only this much
HL7 is parsed here; everything else about the ACKs is the caller's business.

Each acknowledgement must arrive within ``timeout`` seconds. After a timeout or a broken connection the
client closes: a late ACK could otherwise be taken for the answer to the next message.
"""
from __future__ import annotations

import socket
import ssl
import time
from collections import deque
from types import TracebackType

from adapters.mllp.framing import DEFAULT_MAX_FRAME_BYTES, FrameDecoder, FrameTooLarge, frame

READ_CHUNK = 64 * 1024
_SECOND_ACK_AFTER_CA = {b"", b"AL", b"SU"}


class MllpError(Exception):
    """The exchange failed; the connection is closed."""


class MllpTimeout(MllpError, TimeoutError):
    """No (complete) acknowledgement within the timeout."""


class MllpConnectionClosed(MllpError, ConnectionError):
    """The connection is gone (closed by the peer, reset, or never opened)."""


def _segments(message: bytes) -> list[bytes]:
    return [s for s in message.replace(b"\n", b"\r").split(b"\r") if s]


def _ack_modes(message: bytes) -> tuple[bytes, bytes]:
    """(MSH-15, MSH-16) of a message, upper-cased; empty when absent or when there is no MSH."""
    if not message.startswith(b"MSH") or len(message) < 4:
        return b"", b""
    fields = _segments(message)[0].split(message[3:4])
    msh15 = fields[14].strip().upper() if len(fields) > 14 else b""
    msh16 = fields[15].strip().upper() if len(fields) > 15 else b""
    return msh15, msh16


def acknowledgement_code(ack: bytes) -> bytes:
    """MSA-1 of an ACK (b"AA", b"CA", ...), or b"" when it has no MSA segment."""
    if not ack.startswith(b"MSH") or len(ack) < 4:
        return b""
    separator = ack[3:4]
    for segment in _segments(ack)[1:]:
        if segment.startswith(b"MSA" + separator):
            fields = segment.split(separator)
            return fields[1].strip().upper() if len(fields) > 1 else b""
    return b""


def _is_ack(message: bytes) -> bool:
    """MSH-9.1 is ACK: an acknowledgement is never acknowledged."""
    if not message.startswith(b"MSH") or len(message) < 8:
        return False
    fields = _segments(message)[0].split(message[3:4])
    return len(fields) > 8 and fields[8].split(message[4:5])[0].strip().upper() == b"ACK"


def expected_acks(message: bytes, first_ack: bytes | None = None) -> int:
    """How many ACKs to wait for: 0 (NE/NE, or the message is itself an ACK), 1, or 2 (CA then AA/AE/AR)."""
    msh15, msh16 = _ack_modes(message)
    if (msh15 == b"NE" and msh16 == b"NE") or _is_ack(message):
        return 0
    enhanced = bool(msh15 or msh16)
    if first_ack is not None and enhanced and acknowledgement_code(first_ack) == b"CA":
        return 2 if msh16 in _SECOND_ACK_AFTER_CA else 1
    return 1


class MllpClient:
    """``with MllpClient(host, port) as client: acks = client.exchange(message)``."""

    def __init__(self, host: str, port: int, timeout: float = 30.0, ssl_context: ssl.SSLContext | None = None,
                 max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.ssl_context = ssl_context
        self._decoder = FrameDecoder(max_frame_bytes)
        self._received: deque[bytes] = deque()  # ACKs read ahead (several frames in one read)
        self._sock: socket.socket | None = None

    def __enter__(self) -> MllpClient:
        self.connect()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def connect(self) -> None:
        """Open the connection (and the TLS session); the timeout bounds each step."""
        if self._sock is not None:
            return
        where = f"{self.host}:{self.port}"
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except TimeoutError as error:
            raise MllpTimeout(f"connecting to {where} took longer than {self.timeout} s") from error
        except OSError as error:
            raise MllpConnectionClosed(f"cannot connect to {where}: {error}") from error
        if self.ssl_context is not None:
            try:
                sock = self.ssl_context.wrap_socket(sock, server_hostname=self.host)
            except (OSError, ssl.SSLError) as error:
                sock.close()
                raise MllpConnectionClosed(f"TLS handshake with {where} failed: {error}") from error
        self._sock = sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def exchange(self, payload: bytes) -> list[bytes]:
        """Send one message; return its acknowledgement payloads in the order they came (0, 1 or 2)."""
        data = frame(payload)
        sock = self._require()
        try:
            sock.settimeout(self.timeout)
            sock.sendall(data)
        except TimeoutError as error:
            self._fail()
            raise MllpTimeout(f"sending to {self.host}:{self.port} took longer than {self.timeout} s") from error
        except OSError as error:
            self._fail()
            raise MllpConnectionClosed(f"connection to {self.host}:{self.port} lost while sending: {error}") \
                from error
        acks: list[bytes] = []
        while len(acks) < expected_acks(payload, acks[0] if acks else None):
            acks.append(self._read_ack(len(acks) + 1))
        return acks

    def _require(self) -> socket.socket:
        if self._sock is None:
            raise MllpConnectionClosed(f"not connected to {self.host}:{self.port} (use connect() or 'with')")
        return self._sock

    def _fail(self) -> None:
        self.close()
        self._received.clear()
        self._decoder = FrameDecoder(self._decoder.max_frame_bytes)

    def _read_ack(self, number: int) -> bytes:
        """The next acknowledgement; it must be complete within ``timeout`` seconds."""
        deadline = time.monotonic() + self.timeout
        while not self._received:
            data = self._recv(deadline, number)
            try:
                self._received.extend(self._decoder.feed(data))
            except FrameTooLarge as error:
                self._fail()
                raise MllpError(f"acknowledgement {number} from {self.host}:{self.port} is larger than "
                                f"{error.limit} bytes") from error
        return self._received.popleft()

    def _recv(self, deadline: float, number: int) -> bytes:
        where = f"{self.host}:{self.port}"
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise TimeoutError
            sock = self._require()
            sock.settimeout(remaining)
            data = sock.recv(READ_CHUNK)
        except TimeoutError as error:
            self._fail()
            raise MllpTimeout(f"no acknowledgement {number} from {where} within {self.timeout} s") from error
        except OSError as error:
            self._fail()
            raise MllpConnectionClosed(f"connection to {where} lost while waiting for acknowledgement "
                                       f"{number}: {error}") from error
        if not data:
            self._fail()
            raise MllpConnectionClosed(f"{where} closed the connection before acknowledgement {number}")
        return data
