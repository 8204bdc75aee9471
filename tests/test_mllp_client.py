"""The blocking MLLP client against the real listener (in the test's event loop, the client in a thread)."""
from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from adapters.mllp import (
    MllpClient,
    MllpConnectionClosed,
    MllpError,
    MllpServer,
    MllpTimeout,
    Peer,
    client_ssl_context,
    frame,
    server_ssl_context,
)
from adapters.mllp.client import acknowledgement_code, expected_acks
from tests.tls import CLIENT_CN, make_certs

pytestmark = pytest.mark.timeout(30)

HOST = "127.0.0.1"


def message(msh15: str = "", msh16: str = "", control: str = "MSG1") -> bytes:
    modes = f"|||{msh15}|{msh16}" if msh15 or msh16 else ""
    return (f"MSH|^~\\&|MONITOR|ICU|VITALS|HOSP|20240101120000||ORU^R01|{control}|P|2.5{modes}\r"
            "PID|1||42\rOBX|1|NM|8867-4^Heart rate^LN||72|/min\r").encode()


def ack(code: str, control: str = "MSG1") -> bytes:
    return (f"MSH|^~\\&|VITALS|HOSP|MONITOR|ICU|20240101120001||ACK^R01^ACK|A{control}|P|2.5\r"
            f"MSA|{code}|{control}\r").encode()


def modes(payload: bytes) -> tuple[str, str]:
    fields = payload.split(b"\r")[0].decode().split("|") + [""] * 16
    return fields[14], fields[15]


class Engine:
    """Answers like the engine does for an accepted message (HL7 v2.5 2.9); ``silent`` answers nothing."""

    def __init__(self, silent: bool = False) -> None:
        self.silent = silent
        self.received: list[bytes] = []

    async def __call__(self, payload: bytes, peer: Peer) -> Sequence[bytes]:
        self.received.append(payload)
        if self.silent:
            return []
        if payload.startswith(b"boom"):
            raise RuntimeError("store down")
        msh15, msh16 = modes(payload)
        control = payload.split(b"\r")[0].decode().split("|")[9]
        if not (msh15 or msh16):
            return [ack("AA", control)]
        acks = [ack("CA", control)] if msh15 in ("", "AL") else []
        return acks + ([ack("AA", control)] if msh16 in ("", "AL", "SU") else [])


@asynccontextmanager
async def serving(handler: Callable[[bytes, Peer], Awaitable[Sequence[bytes]]], **options: object
                  ) -> AsyncIterator[MllpServer]:
    server = MllpServer(HOST, 0, handler, **options)  # type: ignore[arg-type]
    await server.start()
    try:
        yield server
    finally:
        await server.stop(grace=5.0)
    assert asyncio.all_tasks() == {asyncio.current_task()}


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())  # type: ignore[arg-type]


def exchange_all(port: int, payloads: list[bytes], **options: object) -> list[list[bytes]]:
    with MllpClient(HOST, port, **options) as client:  # type: ignore[arg-type]
        return [client.exchange(payload) for payload in payloads]


def test_original_mode_reads_one_ack() -> None:
    async def scenario() -> None:
        async with serving(Engine()) as server:
            answers = await asyncio.to_thread(exchange_all, server.port, [message()])
        assert answers == [[ack("AA")]]
    run(scenario)


def test_enhanced_mode_al_al_reads_the_accept_and_the_application_ack() -> None:
    async def scenario() -> None:
        async with serving(Engine()) as server:
            answers = await asyncio.to_thread(exchange_all, server.port, [message("AL", "AL")])
        assert answers == [[ack("CA"), ack("AA")]]
    run(scenario)


@pytest.mark.parametrize(("msh15", "msh16", "codes"), [
    ("AL", "NE", ["CA"]),
    ("AL", "ER", ["CA"]),
    ("AL", "SU", ["CA", "AA"]),
    ("NE", "AL", ["AA"]),
    ("NE", "NE", []),
])
def test_enhanced_mode_combinations(msh15: str, msh16: str, codes: list[str]) -> None:
    async def scenario() -> None:
        async with serving(Engine()) as server:
            answers = await asyncio.to_thread(exchange_all, server.port, [message(msh15, msh16)])
        assert answers == [[ack(code) for code in codes]]
    run(scenario)


def test_one_persistent_connection_for_many_messages() -> None:
    async def scenario() -> None:
        engine = Engine()
        payloads = [message(control=f"M{n}") for n in range(10)] + [message("AL", "AL", "E1")]
        async with serving(engine) as server:
            answers = await asyncio.to_thread(exchange_all, server.port, payloads)
            assert server.stats.connections_accepted == 1
        assert answers[:10] == [[ack("AA", f"M{n}")] for n in range(10)]
        assert answers[10] == [ack("CA", "E1"), ack("AA", "E1")]
        assert engine.received == payloads
    run(scenario)


def test_a_server_that_answers_nothing_times_out_and_the_client_closes() -> None:
    def attempt(port: int) -> MllpClient:
        client = MllpClient(HOST, port, timeout=0.3)
        client.connect()
        with pytest.raises(MllpTimeout, match=r"no acknowledgement 1 from 127\.0\.0\.1"):
            client.exchange(message())
        assert not client.connected
        with pytest.raises(MllpConnectionClosed, match="not connected"):
            client.exchange(message())
        return client

    async def scenario() -> None:
        async with serving(Engine(silent=True)) as server:
            await asyncio.to_thread(attempt, server.port)
    run(scenario)


def test_the_server_closing_without_an_ack_is_reported() -> None:
    def attempt(port: int) -> None:
        with MllpClient(HOST, port, timeout=5) as client, \
                pytest.raises(MllpConnectionClosed, match=r"closed the connection|lost"):
            client.exchange(b"boom")

    async def scenario() -> None:
        async with serving(Engine()) as server:
            await asyncio.to_thread(attempt, server.port)
    run(scenario)


def test_acks_arriving_in_pieces_and_together() -> None:
    """A scripted server: the CA byte by byte, then the AA together with the next message's ACK."""
    finished = asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\x1c\x0d")
        for byte in frame(ack("CA")):
            writer.write(bytes([byte]))
            await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(frame(ack("AA")) + frame(ack("AA", "MSG2")))  # the next answer arrives early
        await writer.drain()
        await reader.readuntil(b"\x1c\x0d")
        writer.close()
        await writer.wait_closed()
        finished.set()

    def talk(port: int) -> list[list[bytes]]:
        with MllpClient(HOST, port, timeout=5) as client:
            return [client.exchange(message("AL", "AL")), client.exchange(message(control="MSG2"))]

    async def scenario() -> None:
        server = await asyncio.start_server(answer, HOST, 0)
        try:
            answers = await asyncio.to_thread(talk, server.sockets[0].getsockname()[1])
            await asyncio.wait_for(finished.wait(), 10)
        finally:
            server.close()
            await server.wait_closed()
        assert answers == [[ack("CA"), ack("AA")], [ack("AA", "MSG2")]]
    run(scenario)


def test_connecting_to_a_closed_port_is_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    with pytest.raises(MllpConnectionClosed, match=rf"cannot connect to 127\.0\.0\.1:{port}"):
        MllpClient(HOST, port, timeout=2).connect()


def test_exchange_needs_a_connection_and_a_frameable_payload() -> None:
    client = MllpClient(HOST, 9, timeout=1)
    with pytest.raises(MllpConnectionClosed, match="not connected"):
        client.exchange(message())
    with pytest.raises(ValueError, match="0x0B"):
        client.exchange(b"MSH|\x0b")


def test_an_oversized_ack_is_an_error() -> None:
    async def big(payload: bytes, peer: Peer) -> Sequence[bytes]:
        return [b"A" * 2000]

    def attempt(port: int) -> None:
        with MllpClient(HOST, port, timeout=5, max_frame_bytes=1000) as client, \
                pytest.raises(MllpError, match="larger than 1000 bytes"):
            client.exchange(message())

    async def scenario() -> None:
        async with serving(big) as server:
            await asyncio.to_thread(attempt, server.port)
    run(scenario)


def test_mutual_tls(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    context = server_ssl_context(certs["server.pem"], certs["server.key"], client_ca=certs["ca.pem"],
                                 require_client_cert=True)
    engine = Engine()
    seen: list[Peer] = []

    async def handler(payload: bytes, peer: Peer) -> Sequence[bytes]:
        seen.append(peer)
        return await engine(payload, peer)

    async def scenario() -> None:
        async with serving(handler, ssl_context=context) as server:
            tls = client_ssl_context(certs["ca.pem"], certs["client.pem"], certs["client.key"])
            answers = await asyncio.to_thread(exchange_all, server.port, [message()], ssl_context=tls)
        assert answers == [[ack("AA")]]
        assert [p.tls_subject for p in seen] == [CLIENT_CN]
    run(scenario)


def test_tls_with_an_untrusted_server_certificate_fails_the_connect(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    context = server_ssl_context(certs["server.pem"], certs["server.key"])

    def attempt(port: int) -> None:
        with pytest.raises(MllpConnectionClosed, match="TLS handshake"):
            MllpClient(HOST, port, timeout=5, ssl_context=client_ssl_context(None)).connect()  # system roots

    async def scenario() -> None:
        async with serving(Engine(), ssl_context=context) as server:
            await asyncio.to_thread(attempt, server.port)
    run(scenario)


@pytest.mark.parametrize(("sent", "first", "count"), [
    (message(), None, 1),
    (message(), ack("AA"), 1),
    (message("AL", "AL"), ack("CA"), 2),
    (message("AL", ""), ack("CA"), 2),  # enhanced mode, MSH-16 empty: counts as AL
    (message("AL", "AL"), ack("CE"), 1),
    (message("AL", "AL"), ack("AA"), 1),
    (message("NE", "NE"), None, 0),
    (b"not hl7", None, 1),
])
def test_expected_acks(sent: bytes, first: bytes | None, count: int) -> None:
    assert expected_acks(sent, first) == count


def test_acknowledgement_code_reads_msa_1() -> None:
    assert acknowledgement_code(ack("CA")) == b"CA"
    assert acknowledgement_code(b"MSH|^~\\&|x\rERR|1\rMSA|ae|1") == b"AE"
    assert acknowledgement_code(b"MSH#^~\\&#x\rMSA#AR#1") == b"AR"
    assert acknowledgement_code(b"MSH|^~\\&|x") == b""


def test_an_ack_is_sent_without_waiting_for_an_answer() -> None:
    from adapters.mllp.client import expected_acks
    ack = b"MSH|^~\\&|EHR|HOSP|CART|W1|20240305101501||ACK^R01^ACK|A-1|P|2.5\rMSA|AA|VC-0001\r"
    assert expected_acks(ack) == 0
    assert expected_acks(ack.replace(b"ACK^R01^ACK", b"ORU^R01")) == 1
