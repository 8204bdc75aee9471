"""The MLLP listener over real loopback sockets: the camel-mllp / HAPI edge-case matrix.

Every test runs its own event loop (``asyncio.run``) and ends by stopping the server and checking that no
task and no connection is left behind.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

import pytest

from adapters.mllp import (
    FrameDecoder,
    MllpLimits,
    MllpServer,
    Peer,
    client_ssl_context,
    frame,
    server_ssl_context,
)
from tests.tls import CLIENT_CN, make_certs

pytestmark = pytest.mark.timeout(30)

HOST = "127.0.0.1"
PHI = b"PID|1||123456^^^HOSP^MR||Doe^Jane||19800101|F"


class Recorder:
    """A fake engine handler: records what it got and answers ``ACK:<payload>``.

    Payloads starting with ``boom`` raise, ``big`` get a 1 MiB answer, ``none`` get no answer, ``two`` get
    two answers; ``gate`` (when set) is awaited before answering.
    """

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.received: list[bytes] = []
        self.peers: list[Peer] = []
        self.started = asyncio.Event()
        self.gate = gate

    async def __call__(self, payload: bytes, peer: Peer) -> Sequence[bytes]:
        self.received.append(payload)
        self.peers.append(peer)
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if payload.startswith(b"boom"):
            raise ValueError(f"cannot store {payload!r}")  # PHI in the message: must never be logged
        if payload.startswith(b"big"):
            return [b"A" * (1 << 20)]
        if payload.startswith(b"none"):
            return []
        if payload.startswith(b"two"):
            return [b"ACK1:" + payload, b"ACK2:" + payload]
        await asyncio.sleep(0.001 if len(self.received) % 2 else 0)  # vary the handler's time
        return [b"ACK:" + payload]


@asynccontextmanager
async def serving(handler: Callable[[bytes, Peer], Awaitable[Sequence[bytes]]], **options: object
                  ) -> AsyncIterator[MllpServer]:
    """A started server on a free loopback port; stopped afterwards, leaving no task and no connection."""
    server = MllpServer(HOST, 0, handler, **options)  # type: ignore[arg-type]
    await server.start()
    try:
        yield server
    finally:
        await server.stop(grace=5.0)
    assert server.connections == 0
    assert asyncio.all_tasks() == {asyncio.current_task()}


@dataclass
class Sender:
    """A test peer on asyncio streams."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    decoder: FrameDecoder

    @classmethod
    async def connect(cls, port: int, ssl_context: ssl.SSLContext | None = None) -> Sender:
        reader, writer = await asyncio.open_connection(HOST, port, ssl=ssl_context,
                                                       server_hostname="localhost" if ssl_context else None)
        return cls(reader, writer, FrameDecoder())

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def acks(self, count: int) -> list[bytes]:
        received: list[bytes] = []
        while len(received) < count:
            data = await asyncio.wait_for(self.reader.read(65536), 10)
            assert data, f"connection closed after {len(received)} of {count} ACKs"
            received += self.decoder.feed(data)
        return received

    async def exchange(self, payload: bytes) -> bytes:
        await self.write(frame(payload))
        (ack,) = await self.acks(1)
        return ack

    async def closed_by_server(self) -> bool:
        """True once the server closed or reset the connection (waits up to 10 s)."""
        async with asyncio.timeout(10):
            try:
                while await self.reader.read(65536):
                    pass
            except (ConnectionResetError, ssl.SSLError):
                pass
        return True

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()


@asynccontextmanager
async def sender(port: int, ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[Sender]:
    peer = await Sender.connect(port, ssl_context)
    try:
        yield peer
    finally:
        await peer.close()


async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())  # type: ignore[arg-type]


def test_one_message_gets_its_ack_and_the_handler_sees_the_peer() -> None:
    async def scenario() -> None:
        handler = Recorder()
        async with serving(handler) as server, sender(server.port) as peer:
            assert await peer.exchange(b"MSH|one") == b"ACK:MSH|one"
            local = peer.writer.get_extra_info("sockname")
        assert handler.received == [b"MSH|one"]
        assert handler.peers == [Peer(f"{local[0]}:{local[1]}", None)]
        assert server.stats.frames_received == 1
        assert server.stats.connections_accepted == 1
    run(scenario)


def test_a_hundred_messages_on_one_persistent_connection_answered_in_order() -> None:
    async def scenario() -> None:
        handler = Recorder()
        async with serving(handler) as server, sender(server.port) as peer:
            for number in range(50):  # one by one
                assert await peer.exchange(b"msg %d" % number) == b"ACK:msg %d" % number
            await peer.write(b"".join(frame(b"msg %d" % n) for n in range(50, 100)))  # pipelined
            assert await peer.acks(50) == [b"ACK:msg %d" % n for n in range(50, 100)]
        assert handler.received == [b"msg %d" % n for n in range(100)]
        assert server.stats.connections_accepted == 1
    run(scenario)


def test_a_frame_arriving_byte_by_byte() -> None:
    async def scenario() -> None:
        handler = Recorder()
        async with serving(handler) as server, sender(server.port) as peer:
            for byte in frame(b"MSH|split\rPID|1"):
                await peer.write(bytes([byte]))
                await asyncio.sleep(0.001)
            assert await peer.acks(1) == [b"ACK:MSH|split\rPID|1"]
        assert handler.received == [b"MSH|split\rPID|1"]
    run(scenario)


def test_several_frames_in_one_write() -> None:
    async def scenario() -> None:
        handler = Recorder()
        async with serving(handler) as server, sender(server.port) as peer:
            await peer.write(frame(b"a") + frame(b"b") + frame(b"c"))
            assert await peer.acks(3) == [b"ACK:a", b"ACK:b", b"ACK:c"]
        assert handler.received == [b"a", b"b", b"c"]
    run(scenario)


def test_garbage_before_the_start_block_is_discarded() -> None:
    async def scenario() -> None:
        handler = Recorder()
        async with serving(handler) as server, sender(server.port) as peer:
            await peer.write(b"GET / HTTP/1.0\r\n\r\n" + frame(b"MSH|after garbage") + b"\n")
            assert await peer.acks(1) == [b"ACK:MSH|after garbage"]
            assert await peer.exchange(b"MSH|next") == b"ACK:MSH|next"
        assert handler.received == [b"MSH|after garbage", b"MSH|next"]
    run(scenario)


def test_a_start_block_inside_an_unfinished_frame_drops_the_partial_frame() -> None:
    async def scenario() -> None:
        handler = Recorder()
        async with serving(handler) as server, sender(server.port) as peer:
            await peer.write(b"\x0bMSH|partial, sender gave up")
            await peer.write(frame(b"MSH|whole"))
            assert await peer.acks(1) == [b"ACK:MSH|whole"]
        assert handler.received == [b"MSH|whole"]
    run(scenario)


def test_an_end_block_byte_without_cr_drops_that_frame_only() -> None:
    async def scenario() -> None:
        handler = Recorder()
        async with serving(handler) as server, sender(server.port) as peer:
            await peer.write(b"\x0bMSH|broken\x1c\n" + frame(b"MSH|good"))
            assert await peer.acks(1) == [b"ACK:MSH|good"]
        assert handler.received == [b"MSH|good"]
    run(scenario)


def test_an_oversized_frame_closes_the_connection_without_calling_the_handler() -> None:
    async def scenario() -> None:
        handler = Recorder()
        async with serving(handler, limits=MllpLimits(max_frame_bytes=1000)) as server:
            async with sender(server.port) as peer:
                await peer.write(b"\x0b" + b"X" * 1001)
                assert await peer.closed_by_server()
            assert handler.received == []
            assert server.stats.frames_oversize == 1
            async with sender(server.port) as other:  # the server is fine
                assert await other.exchange(b"X" * 1000) == b"ACK:" + b"X" * 1000
    run(scenario)


def test_frames_before_an_oversized_one_in_the_same_read_are_still_answered() -> None:
    async def scenario() -> None:
        handler = Recorder()
        async with serving(handler, limits=MllpLimits(max_frame_bytes=100)) as server, \
                sender(server.port) as peer:
            await peer.write(frame(b"small") + b"\x0b" + b"X" * 200)
            assert await peer.acks(1) == [b"ACK:small"]
            assert await peer.closed_by_server()
        assert handler.received == [b"small"]
    run(scenario)


def test_an_incomplete_frame_then_close_is_never_handed_on() -> None:
    async def scenario() -> None:
        handler = Recorder()
        async with serving(handler) as server:
            async with sender(server.port) as peer:
                await peer.write(b"\x0bMSH|no end block")
                peer.writer.write_eof()
                assert await peer.closed_by_server()
            await eventually(lambda: server.connections == 0)
            assert handler.received == []
            async with sender(server.port) as other:
                assert await other.exchange(b"MSH|ok") == b"ACK:MSH|ok"
    run(scenario)


def test_silence_inside_a_frame_hits_the_read_timeout() -> None:
    async def scenario() -> None:
        handler = Recorder()
        limits = MllpLimits(read_timeout=0.2, idle_timeout=60)
        async with serving(handler, limits=limits) as server, sender(server.port) as peer:
            await peer.write(b"\x0bMSH|stalled")
            assert await peer.closed_by_server()
            assert server.stats.read_timeouts == 1
            assert server.stats.idle_timeouts == 0
        assert handler.received == []
    run(scenario)


def test_silence_between_frames_hits_the_idle_timeout() -> None:
    async def scenario() -> None:
        handler = Recorder()
        limits = MllpLimits(read_timeout=60, idle_timeout=0.3)
        async with serving(handler, limits=limits) as server, sender(server.port) as peer:
            assert await peer.exchange(b"MSH|one") == b"ACK:MSH|one"
            assert await peer.closed_by_server()
            assert server.stats.idle_timeouts == 1
            assert server.stats.read_timeouts == 0
    run(scenario)


def test_bytes_outside_frames_do_not_keep_a_connection_alive() -> None:
    async def scenario() -> None:
        handler = Recorder()
        limits = MllpLimits(idle_timeout=0.3)
        async with serving(handler, limits=limits) as server, sender(server.port) as peer:
            async def chatter() -> None:
                try:
                    while True:
                        await peer.write(b"\r\n")
                        await asyncio.sleep(0.02)
                except ConnectionError:
                    pass
            noise = asyncio.create_task(chatter())
            assert await peer.closed_by_server()
            noise.cancel()
            await asyncio.gather(noise, return_exceptions=True)
            assert server.stats.idle_timeouts == 1
    run(scenario)


def test_connections_over_the_cap_are_closed_at_once() -> None:
    async def scenario() -> None:
        handler = Recorder()
        async with serving(handler, limits=MllpLimits(max_connections=2)) as server, \
                sender(server.port) as first, sender(server.port) as second:
            await eventually(lambda: server.connections == 2)
            try:
                async with sender(server.port) as third:
                    assert await third.closed_by_server()
            except ConnectionResetError:
                pass  # the reset came before the client had seen its connect complete
            await eventually(lambda: server.stats.connections_refused == 1)
            assert await first.exchange(b"1") == b"ACK:1"
            assert await second.exchange(b"2") == b"ACK:2"
        assert handler.received == [b"1", b"2"]
    run(scenario)


def test_a_hundred_idle_connections_do_not_stop_another_from_getting_its_ack() -> None:
    async def scenario() -> None:
        handler = Recorder()
        async with serving(handler, limits=MllpLimits(max_connections=150)) as server:
            idle = [await Sender.connect(server.port) for _ in range(100)]
            try:
                await eventually(lambda: server.connections == 100)
                async with sender(server.port) as busy:
                    assert await busy.exchange(b"MSH|101st") == b"ACK:MSH|101st"
            finally:
                for peer in idle:
                    await peer.close()
    run(scenario)


def _raw_socket(port: int, receive_buffer: int | None = None) -> socket.socket:
    sock = socket.socket()
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect((HOST, port))
    return sock


def test_a_peer_that_never_reads_its_acks_blocks_nobody_and_is_dropped() -> None:
    async def scenario() -> None:
        handler = Recorder()
        limits = MllpLimits(write_timeout=0.3)
        async with serving(handler, limits=limits) as server:
            stuck = _raw_socket(server.port, receive_buffer=4096)
            try:
                stuck.sendall(b"".join(frame(b"big %d" % n) for n in range(20)))  # 20 MiB of ACKs
                async with sender(server.port) as other:
                    await handler.started.wait()
                    for number in range(5):
                        assert await other.exchange(b"small %d" % number) == b"ACK:small %d" % number
                await eventually(lambda: server.stats.write_timeouts == 1)
                await eventually(lambda: server.connections == 0)
            finally:
                stuck.close()
    run(scenario)


def test_a_reset_in_the_middle_of_a_frame_leaves_the_server_healthy() -> None:
    async def scenario() -> None:
        handler = Recorder()
        async with serving(handler) as server:
            rude = _raw_socket(server.port)
            rude.sendall(b"\x0bMSH|half a mess")
            await eventually(lambda: server.connections == 1)
            rude.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            rude.close()  # RST instead of FIN
            await eventually(lambda: server.connections == 0)
            assert handler.received == []
            async with sender(server.port) as peer:
                assert await peer.exchange(b"MSH|after reset") == b"ACK:MSH|after reset"
    run(scenario)


def test_a_peer_that_resets_while_its_handler_runs_leaves_the_server_healthy() -> None:
    async def scenario() -> None:
        gate = asyncio.Event()
        handler = Recorder(gate)
        async with serving(handler) as server:
            rude = _raw_socket(server.port)
            rude.sendall(frame(b"MSH|then gone"))
            await handler.started.wait()
            rude.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            rude.close()
            await asyncio.sleep(0.05)
            gate.set()  # the handler finishes; its ACK has nowhere to go
            await eventually(lambda: server.connections == 0)
            async with sender(server.port) as peer:
                assert await peer.exchange(b"MSH|next") == b"ACK:MSH|next"
        assert handler.received == [b"MSH|then gone", b"MSH|next"]
    run(scenario)


def test_a_handler_exception_closes_that_connection_only_and_logs_no_content(
        caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        handler = Recorder()
        async with serving(handler) as server, sender(server.port) as bystander:
            assert await bystander.exchange(b"MSH|before") == b"ACK:MSH|before"
            async with sender(server.port) as victim:
                await victim.write(frame(b"boom " + PHI))
                assert await victim.closed_by_server()
                assert victim.decoder.feed(b"") == []  # and no ACK came
            assert await bystander.exchange(b"MSH|after") == b"ACK:MSH|after"
            assert server.stats.handler_errors == 1

    with caplog.at_level(logging.DEBUG, logger="vitalsstream.mllp"):
        run(scenario)
    failures = [r for r in caplog.records if getattr(r, "event", None) == "handler_error"]
    assert len(failures) == 1
    assert failures[0].error == "ValueError"  # type: ignore[attr-defined]
    for record in caplog.records:
        if record.name != "vitalsstream.mllp":
            continue
        assert hasattr(record, "peer") and hasattr(record, "event")
        text = f"{record.getMessage()} {record.__dict__}"
        assert "Doe^Jane" not in text and "boom" not in text


def test_no_ack_from_the_handler_sends_nothing_and_keeps_the_connection() -> None:
    async def scenario() -> None:
        handler = Recorder()
        async with serving(handler) as server, sender(server.port) as peer:
            await peer.write(frame(b"none") + frame(b"two") + frame(b"MSH|three"))
            assert await peer.acks(3) == [b"ACK1:two", b"ACK2:two", b"ACK:MSH|three"]
    run(scenario)


def test_a_half_closed_sender_still_gets_its_ack() -> None:
    async def scenario() -> None:
        handler = Recorder()
        async with serving(handler) as server, sender(server.port) as peer:
            await peer.write(frame(b"MSH|last words"))
            peer.writer.write_eof()
            assert await peer.acks(1) == [b"ACK:MSH|last words"]
            assert await peer.closed_by_server()
    run(scenario)


def test_stop_lets_a_running_handler_answer_and_refuses_new_connections() -> None:
    async def scenario() -> None:
        gate = asyncio.Event()
        handler = Recorder(gate)
        server = MllpServer(HOST, 0, handler)
        await server.start()
        async with sender(server.port) as working, sender(server.port) as waiting:
            await working.write(frame(b"MSH|slow"))
            await handler.started.wait()
            assert server.listening
            stopping = asyncio.create_task(server.stop(grace=10))
            await asyncio.sleep(0)  # stop() has begun: the listening socket is closed
            assert not server.listening
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection(HOST, server.port)
            assert await waiting.closed_by_server()  # no handler call under way: closed at once
            assert not stopping.done()
            gate.set()
            assert await working.acks(1) == [b"ACK:MSH|slow"]
            assert await working.closed_by_server()
            await stopping
        assert server.connections == 0
        assert asyncio.all_tasks() == {asyncio.current_task()}
    run(scenario)


def test_stop_cancels_a_handler_that_outlives_the_grace_period() -> None:
    async def scenario() -> None:
        handler = Recorder(asyncio.Event())  # never set
        server = MllpServer(HOST, 0, handler)
        await server.start()
        async with sender(server.port) as peer:
            await peer.write(frame(b"MSH|stuck"))
            await handler.started.wait()
            await server.stop(grace=0.2)
            assert await peer.closed_by_server()
            assert peer.decoder.feed(b"") == []
        assert asyncio.all_tasks() == {asyncio.current_task()}
    run(scenario)


# --- TLS ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return make_certs(tmp_path_factory.mktemp("mllp-tls"))


def test_tls_carries_messages(certs: dict[str, str]) -> None:
    async def scenario() -> None:
        handler = Recorder()
        context = server_ssl_context(certs["server.pem"], certs["server.key"])
        async with serving(handler, ssl_context=context) as server, \
                sender(server.port, client_ssl_context(certs["ca.pem"])) as peer:
            assert await peer.exchange(b"MSH|secret") == b"ACK:MSH|secret"
            assert await peer.exchange(b"MSH|again") == b"ACK:MSH|again"
        assert [p.tls_subject for p in handler.peers] == [None, None]
    run(scenario)


def test_mutual_tls_refuses_a_client_without_certificate_and_names_one_with(certs: dict[str, str]) -> None:
    async def scenario() -> None:
        handler = Recorder()
        context = server_ssl_context(certs["server.pem"], certs["server.key"], client_ca=certs["ca.pem"],
                                     require_client_cert=True)
        async with serving(handler, ssl_context=context) as server:
            try:  # TLS 1.3: the client may finish its side before the server refuses
                async with sender(server.port, client_ssl_context(certs["ca.pem"])) as anonymous:
                    await anonymous.write(frame(b"MSH|who am I"))
                    assert await anonymous.closed_by_server()
            except (ssl.SSLError, ConnectionError):
                pass
            await eventually(lambda: server.stats.tls_failures == 1)
            assert handler.received == []
            known = client_ssl_context(certs["ca.pem"], certs["client.pem"], certs["client.key"])
            async with sender(server.port, known) as peer:
                assert await peer.exchange(b"MSH|me") == b"ACK:MSH|me"
        assert [p.tls_subject for p in handler.peers] == [CLIENT_CN]
    run(scenario)


def test_a_stalled_tls_handshake_times_out_without_blocking_others(certs: dict[str, str]) -> None:
    async def scenario() -> None:
        handler = Recorder()
        context = server_ssl_context(certs["server.pem"], certs["server.key"])
        async with serving(handler, ssl_context=context, limits=MllpLimits(handshake_timeout=0.3)) as server, \
                sender(server.port) as silent:  # plain TCP, never says hello
            async with sender(server.port, client_ssl_context(certs["ca.pem"])) as peer:
                assert await peer.exchange(b"MSH|ok") == b"ACK:MSH|ok"
            assert await silent.closed_by_server()
            assert server.stats.tls_failures == 1
    run(scenario)


def test_plain_tcp_to_a_tls_listener_is_refused(certs: dict[str, str]) -> None:
    async def scenario() -> None:
        handler = Recorder()
        context = server_ssl_context(certs["server.pem"], certs["server.key"])
        async with serving(handler, ssl_context=context) as server, sender(server.port) as plain:
            await plain.write(frame(b"MSH|in clear"))
            assert await plain.closed_by_server()
            await eventually(lambda: server.stats.tls_failures == 1)
        assert handler.received == []
    run(scenario)


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="read_timeout"):
        MllpLimits(read_timeout=0)
    with pytest.raises(ValueError, match="client_ca"):
        server_ssl_context("cert.pem", "key.pem", require_client_cert=True)
