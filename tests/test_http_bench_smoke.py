"""Smoke tests of bench/http_bench.py: it starts the engine (SQLite) and the bare Spyne peer, checks one request
of each with zeep, drives REST, SOAP and the peer, checks the stored readings and stops everything.

No timing assertions: the numbers depend on the machine; only the shape of the output is checked.
"""
from __future__ import annotations

import subprocess

import pytest

from tests.bench_runner import BENCH_DIR, imported, run_bench

BENCH = BENCH_DIR / "http_bench.py"
TINY = ["--seconds", "0.5", "--warmup", "0.2", "--clients", "2"]


def _run(arguments: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_bench(BENCH, arguments, timeout)


@pytest.fixture(scope="module")
def bench():
    yield from imported(BENCH)


def test_cli_drives_rest_soap_and_the_peer_and_exits_0():
    result = _run(TINY)
    assert result.returncode == 0, result.stdout + result.stderr
    for contender in ("engine-rest", "engine-soap", "spyne-peer"):
        assert contender in result.stdout
    assert "ratio to spyne-peer" in result.stdout
    assert "zeep check (wsdl/vitals.wsdl): ok" in result.stdout
    assert "MISMATCH" not in result.stdout
    assert "ok: " in result.stdout  # the stored-readings check ran


def test_requests_are_unique_and_answers_are_checked(bench):
    rest, soap = bench.Feed("rest", 8000), bench.Feed("soap", 8000)
    first, second = rest.next("run-R1-"), rest.next("run-R1-")
    assert first.key != second.key and first.data != second.data
    assert b"Idempotency-Key: run-R1-0000001\r\n" in first.data
    envelope = soap.next("run-S1-")
    assert envelope.data.count(b"<v:Reading>") == bench.READINGS
    assert b"<v:IdempotencyKey>run-S1-0000001</v:IdempotencyKey>" in envelope.data
    fault = (b"<soap11env:Envelope><soap11env:Body><soap11env:Fault><faultcode>soap11env:Client</faultcode>"
             b"</soap11env:Fault></soap11env:Body></soap11env:Envelope>")
    assert bench.check_engine_soap(envelope, 500, fault) is not None
    assert bench.check_peer(envelope, 500, fault) is not None
    assert bench.check_rest(first, 422, b'{"detail": []}') is not None
    assert bench.check_rest(first, 200, b'{"message_id": 1, "readings": []}') is not None  # a duplicate
