"""The MLLP listener: many persistent TCP (or TLS) connections, one message at a time on each.

How a connection lives:

1. accept: over ``max_connections`` the socket is reset (RST) before a byte is read; with TLS the
   handshake runs next, bounded by ``handshake_timeout``.
2. read: bytes go through a :class:`~adapters.mllp.framing.FrameDecoder`. Between frames the connection may
   be quiet for ``idle_timeout``; once a frame has started, every pause must be shorter than
   ``read_timeout``. Either timeout, an oversized frame, EOF or a reset ends the connection, and a frame that
   was not complete is simply forgotten: there is no MSH to answer, nothing is handed on, nothing stored.
3. handle: each complete payload goes to the handler, strictly in arrival order, one at a time, so the
   ACKs leave in the order the messages came. The handler returns the ACK payloads (maybe none).
4. answer: the ACKs are framed and written; ``drain`` is bounded by ``write_timeout`` so a peer that never
   reads cannot hold anything. A handler exception closes the connection without an ACK: the sender will
   resend, and the engine's duplicate check gives the same answer again.

Every connection is its own task, so a slow or hostile peer only ever delays itself. Logs go to
``vitalsstream.mllp`` with ``extra`` fields (``peer``, ``event``, ``listener``) and never contain payload
bytes: messages carry PHI.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import struct
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

from adapters.mllp.framing import FrameDecoder, FrameTooLarge, frame

log = logging.getLogger("vitalsstream.mllp")

READ_CHUNK = 64 * 1024
LISTEN_BACKLOG = 128
ACCEPT_RETRY_DELAY = 1.0  # pause after a failed accept (out of file descriptors), as asyncio's server does
CLOSE_TIMEOUT = 2.0  # how long a graceful close (TLS close_notify, flush) may take before an abort


@dataclass(frozen=True)
class MllpLimits:
    """Every limit of the listener, with its default. Times are seconds."""

    max_frame_bytes: int = 1 << 20  # 1 MiB payload; a bigger frame drops the connection
    read_timeout: float = 30.0  # longest pause inside a started frame
    idle_timeout: float = 600.0  # longest time between frames (bytes outside a frame do not count)
    max_connections: int = 200  # connections above this are aborted at once
    write_timeout: float = 30.0  # longest wait for the ACKs to be taken by the peer
    handshake_timeout: float = 10.0  # TLS only: longest TLS handshake

    def __post_init__(self) -> None:
        for name in ("max_frame_bytes", "read_timeout", "idle_timeout", "max_connections", "write_timeout",
                     "handshake_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"MllpLimits.{name} must be positive")


@dataclass(frozen=True)
class Peer:
    """Who sent a message: ``host:port`` and, with mutual TLS, the client certificate's subject CN."""

    address: str
    tls_subject: str | None = None


Handler = Callable[[bytes, Peer], Awaitable[Sequence[bytes]]]
"""One frame payload (raw HL7 bytes) in, the ACK payloads to send back out, in order (maybe none)."""


@dataclass
class MllpStats:
    """Counters over the server object's life; read them, never write them."""

    connections_accepted: int = 0
    connections_refused: int = 0  # over max_connections, or arriving while stopping
    frames_received: int = 0
    frames_oversize: int = 0
    read_timeouts: int = 0
    idle_timeouts: int = 0
    write_timeouts: int = 0
    handler_errors: int = 0
    tls_failures: int = 0  # handshake failed or timed out

    @property
    def timeouts(self) -> int:
        return self.read_timeouts + self.idle_timeouts + self.write_timeouts


@dataclass(eq=False)
class _Connection:
    sock: socket.socket
    peer: Peer
    decoder: FrameDecoder
    reader: asyncio.StreamReader | None = None  # set once the streams (and TLS) are up
    writer: asyncio.StreamWriter | None = None
    busy: bool = False  # a handler call or its ACK write is under way
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def streams(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        assert self.reader is not None and self.writer is not None
        return self.reader, self.writer


class _Close(Exception):
    """Ends a connection; ``event`` names why (the log's ``reason``), ``level`` how loudly."""

    def __init__(self, event: str, level: int = logging.INFO, abort: bool = False) -> None:
        super().__init__(event)
        self.event = event
        self.level = level
        self.abort = abort


def _address(name: object) -> str:
    """``host:port`` (``[host]:port`` for IPv6) of a socket address."""
    if not isinstance(name, tuple) or len(name) < 2:
        return str(name)
    host, port = name[0], name[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _subject_cn(writer: asyncio.StreamWriter) -> str | None:
    """The client certificate's subject commonName (only present when the server asked for a certificate)."""
    cert = writer.get_extra_info("peercert") or {}
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): nothing read, nothing sent, no TIME_WAIT left behind."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class MllpServer:
    """An MLLP listener handing every complete frame to ``handler`` and writing back what it returns.

    Accepting is done here, with ``loop.add_reader`` on the listening socket, rather than by
    ``asyncio.start_server``: a connection over the cap is reset as a bare socket before any transport or
    TLS work, and ``stop()`` ends accepting synchronously, with no accept left half-way. (This needs a
    selector event loop: the default on Linux and macOS, ``WindowsSelectorEventLoopPolicy`` on Windows.)
    """

    def __init__(self, host: str, port: int, handler: Handler, limits: MllpLimits | None = None,
                 ssl_context: ssl.SSLContext | None = None, name: str = "mllp") -> None:
        self.host = host
        self.port = port  # the bound port once started (useful with port 0)
        self.handler = handler
        self.limits = limits or MllpLimits()
        self.ssl_context = ssl_context
        self.name = name
        self.stats = MllpStats()
        self._listener: socket.socket | None = None
        self._retry: asyncio.TimerHandle | None = None  # accepting paused after a failed accept()
        self._connections: set[_Connection] = set()
        self._stopping = False

    @property
    def connections(self) -> int:
        """Open connections, including those still in their TLS handshake."""
        return len(self._connections)

    @property
    def listening(self) -> bool:
        """True from ``start()`` until ``stop()`` begins (for health checks)."""
        return self._listener is not None

    async def start(self) -> None:
        """Bind and listen. Port 0 picks a free port; ``self.port`` then holds it."""
        if self._listener is not None:
            raise RuntimeError(f"MLLP listener {self.name} is already started")
        loop = asyncio.get_running_loop()
        family, _, _, _, address = (await loop.getaddrinfo(self.host or None, self.port, type=socket.SOCK_STREAM,
                                                           flags=socket.AI_PASSIVE))[0]
        listener = socket.create_server(address[:2], family=family, backlog=LISTEN_BACKLOG)
        listener.setblocking(False)
        self._listener, self.port, self._stopping = listener, listener.getsockname()[1], False
        loop.add_reader(listener.fileno(), self._on_readable)
        self._log(logging.INFO, "MLLP listener started", "listening", "", address=f"{self.host}:{self.port}")

    async def stop(self, grace: float = 10.0) -> None:
        """Stop at once for new connections; let started handler calls finish and answer, then close all.

        Connections waiting for data (or mid-frame, or in a TLS handshake) are closed right away: no handler
        has seen their bytes, so the sender simply gets no ACK and resends. Connections whose handler is
        running get up to ``grace`` seconds to finish and write their ACKs; then they are cancelled.
        """
        if self._listener is None:
            return
        self._stopping = True
        self._stop_listening()
        for conn in list(self._connections):
            if not conn.busy and conn.task is not None:
                conn.task.cancel()
        busy = [c.task for c in self._connections if c.busy and c.task is not None]
        if busy:
            _, late = await asyncio.wait(busy, timeout=grace)
            for task in late:
                task.cancel()
        await asyncio.gather(*[c.task for c in self._connections if c.task is not None], return_exceptions=True)
        for conn in list(self._connections):  # accepted, but cancelled before its task ever ran
            conn.sock.close()
            self._connections.discard(conn)
        self._log(logging.INFO, "MLLP listener stopped", "stopped", "", address=f"{self.host}:{self.port}")

    def _stop_listening(self) -> None:
        """Synchronously: no accept callback can run after this, and the kernel refuses new connections."""
        listener, self._listener = self._listener, None
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if listener is not None:
            asyncio.get_running_loop().remove_reader(listener.fileno())
            listener.close()

    def _on_readable(self) -> None:
        """The listening socket has connections waiting: accept them (a backlog's worth at most, so a flood
        cannot starve the loop), each gets a task or a reset."""
        for _ in range(LISTEN_BACKLOG):
            if self._listener is None:
                return
            try:
                sock, address = self._listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as error:  # e.g. EMFILE, out of file descriptors: pause, as asyncio's server does
                self._log(logging.ERROR, "accept failed; retrying shortly", "accept_failed", "",
                          error=type(error).__name__)
                self._pause_accepting()
                return
            sock.setblocking(False)
            self._admit(sock, _address(address))

    def _pause_accepting(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._listener is not None
        fileno = self._listener.fileno()
        loop.remove_reader(fileno)

        def resume() -> None:
            self._retry = None
            if self._listener is not None:
                loop.add_reader(fileno, self._on_readable)
        self._retry = loop.call_later(ACCEPT_RETRY_DELAY, resume)

    def _admit(self, sock: socket.socket, address: str) -> None:
        """A new socket: reset it at once when over the cap, else give it a task of its own."""
        if self._stopping or len(self._connections) >= self.limits.max_connections:
            self.stats.connections_refused += 1
            _reset(sock)
            self._log(logging.WARNING, "connection refused", "refused", address)
            return
        self.stats.connections_accepted += 1
        conn = _Connection(sock, Peer(address), FrameDecoder(self.limits.max_frame_bytes))
        self._connections.add(conn)
        conn.task = asyncio.get_running_loop().create_task(self._serve(conn), name=f"{self.name} {address}")

    async def _serve(self, conn: _Connection) -> None:
        """The whole life of one connection; whatever happens, it ends closed and forgotten."""
        abort = True
        try:
            await self._open(conn)
            self._log(logging.DEBUG, "connection opened", "opened", conn.peer.address)
            await self._conversation(conn)
            abort = False
            self._log_close(conn, logging.DEBUG, "server_stopping" if self._stopping else "peer_closed")
        except _Close as close:
            abort = close.abort
            self._log_close(conn, close.level, close.event)
        except asyncio.CancelledError:  # stop(): idle, mid-frame, or past the grace period
            abort = False
            self._log_close(conn, logging.DEBUG, "server_stopping")
            raise
        except (ConnectionError, OSError) as error:
            self._log_close(conn, logging.INFO, "connection_lost", error=type(error).__name__)
        except Exception as error:  # a bug here must end this connection only, and say nothing of the content
            self._log_close(conn, logging.ERROR, "internal_error", error=type(error).__name__)
        finally:
            try:
                await self._close(conn, abort)
            finally:
                self._connections.discard(conn)

    async def _open(self, conn: _Connection) -> None:
        """Wrap the socket in asyncio streams, with the TLS handshake first when the listener uses TLS."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=READ_CHUNK, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        if self.ssl_context is None:
            transport, _ = await loop.connect_accepted_socket(lambda: protocol, conn.sock)
        else:
            transport = await self._handshake(conn, lambda: protocol)
        conn.reader, conn.writer = reader, asyncio.StreamWriter(transport, protocol, reader, loop)
        if self.ssl_context is not None:
            conn.peer = Peer(conn.peer.address, _subject_cn(conn.writer))

    async def _handshake(self, conn: _Connection, factory: Callable[[], asyncio.Protocol]) -> asyncio.Transport:
        timeout = self.limits.handshake_timeout
        try:
            async with asyncio.timeout(timeout + 1.0):  # asyncio enforces the timeout; this is a backstop
                transport, _ = await asyncio.get_running_loop().connect_accepted_socket(
                    factory, conn.sock, ssl=self.ssl_context, ssl_handshake_timeout=timeout)
        except (TimeoutError, ssl.SSLError, ConnectionError, OSError) as error:
            self.stats.tls_failures += 1
            self._log(logging.WARNING, "TLS handshake failed", "tls_failed", conn.peer.address,
                      error=type(error).__name__)
            raise _Close("tls_failed", logging.DEBUG, abort=True) from None
        return cast(asyncio.Transport, transport)

    async def _conversation(self, conn: _Connection) -> None:
        """Read, handle and answer frames until the peer leaves or the server stops."""
        idle_since = time.monotonic()
        while not self._stopping:
            try:
                frames = await self._read(conn, idle_since)
            except FrameTooLarge as error:
                self.stats.frames_oversize += 1
                await self._handle_all(conn, error.frames)
                raise _Close("frame_too_large", logging.WARNING, abort=True) from None
            if frames is None:
                return
            await self._handle_all(conn, frames)
            if frames:
                idle_since = time.monotonic()

    async def _read(self, conn: _Connection, idle_since: float) -> list[bytes] | None:
        """The frames completed by the next read, or None at a clean EOF between frames."""
        in_frame = conn.decoder.in_frame
        idle_left = idle_since + self.limits.idle_timeout - time.monotonic()
        timeout = self.limits.read_timeout if in_frame else idle_left
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                data = await conn.streams[0].read(READ_CHUNK)
        except TimeoutError:
            if in_frame:
                self.stats.read_timeouts += 1
                raise _Close("read_timeout", abort=True) from None
            self.stats.idle_timeouts += 1
            raise _Close("idle_timeout") from None
        if not data:
            if conn.decoder.in_frame:
                raise _Close("eof_in_frame", logging.WARNING)
            return None
        return self._decode(conn, data)

    def _decode(self, conn: _Connection, data: bytes) -> list[bytes]:
        decoder = conn.decoder
        clean = not (decoder.discarded or decoder.abandoned or decoder.malformed)
        frames = decoder.feed(data)
        if clean and (decoder.discarded or decoder.abandoned or decoder.malformed):  # once per connection
            self._log(logging.WARNING, "bytes outside a valid frame dropped", "framing_dropped",
                      conn.peer.address, discarded=decoder.discarded, abandoned=decoder.abandoned,
                      malformed=decoder.malformed)
        return frames

    async def _handle_all(self, conn: _Connection, frames: list[bytes]) -> None:
        """Hand the frames on one at a time; each one's ACKs are written before the next is handled."""
        for payload in frames:
            if self._stopping:
                return
            self.stats.frames_received += 1
            conn.busy = True
            try:
                await self._answer(conn, await self._call_handler(conn, payload))
            finally:
                conn.busy = False

    async def _call_handler(self, conn: _Connection, payload: bytes) -> list[bytes]:
        try:
            return [frame(ack) for ack in await self.handler(payload, conn.peer)]
        except Exception as error:  # the handler's failure must not take the listener down
            self.stats.handler_errors += 1
            self._log(logging.ERROR, "handler failed; connection closed without ACK", "handler_error",
                      conn.peer.address, error=type(error).__name__)
            raise _Close("handler_error", logging.DEBUG, abort=True) from None

    async def _answer(self, conn: _Connection, framed: list[bytes]) -> None:
        if not framed:
            return
        _, writer = conn.streams
        if writer.is_closing():  # the peer left while the handler ran
            raise ConnectionResetError("peer closed the connection before its ACK")
        writer.writelines(framed)
        if writer.transport.get_write_buffer_size() == 0:
            await writer.drain()  # all sent already: drain cannot wait, and a timer per ACK costs more than it
            return
        try:
            async with asyncio.timeout(self.limits.write_timeout):
                await writer.drain()
        except TimeoutError:
            self.stats.write_timeouts += 1
            raise _Close("write_timeout", logging.WARNING, abort=True) from None

    async def _close(self, conn: _Connection, abort: bool) -> None:
        """Close gracefully when nothing is pending, else abort; never wait on the peer for long."""
        writer = conn.writer
        if writer is None:  # the streams never came up (failed or cancelled TLS handshake)
            conn.sock.close()
            return
        transport = writer.transport
        if abort or transport.get_write_buffer_size() > 0:
            transport.abort()
        else:
            writer.close()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await writer.wait_closed()
        except TimeoutError:
            transport.abort()
        except (ConnectionError, OSError, ssl.SSLError):
            pass

    def _log_close(self, conn: _Connection, level: int, reason: str, **fields: object) -> None:
        """One record per closed connection, with the framing counters when something was dropped."""
        decoder = conn.decoder
        if decoder.discarded or decoder.abandoned or decoder.malformed:
            fields.update(discarded=decoder.discarded, abandoned=decoder.abandoned, malformed=decoder.malformed)
        self._log(level, "connection closed", "closed", conn.peer.address, reason=reason, **fields)

    def _log(self, level: int, message: str, event: str, peer: str, **fields: object) -> None:
        log.log(level, message, extra={"event": event, "peer": peer, "listener": self.name, **fields})


def server_ssl_context(cert: str, key: str, client_ca: str | None = None,
                       require_client_cert: bool = False) -> ssl.SSLContext:
    """TLS 1.2+ for the listener. With ``client_ca`` clients may present a certificate signed by it;
    ``require_client_cert`` makes that mandatory (mutual TLS)."""
    if require_client_cert and not client_ca:
        raise ValueError("require_client_cert needs client_ca to verify client certificates against")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca:
        context.load_verify_locations(cafile=client_ca)
        context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return context


def client_ssl_context(ca: str | None, cert: str | None = None, key: str | None = None,
                       verify: bool = True) -> ssl.SSLContext:
    """TLS 1.2+ for a sender. ``ca``: trust these roots instead of the system's; ``cert``/``key``: our
    client certificate for mutual TLS; ``verify=False`` skips server verification (tests only)."""
    context = ssl.create_default_context(cafile=ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert:
        context.load_cert_chain(cert, key)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
