"""Smoke tests of bench/http_bench.py: it starts the engine (SQLite) and the bare Spyne peer, checks one request
of each with zeep, drives REST, SOAP and the peer, checks the stored readings and stops everything.

No timing assertions: the numbers depend on the machine; only the shape of the output is checked.
"""
from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parent.parent / "bench"
BENCH = BENCH_DIR / "http_bench.py"
TINY = ["--seconds", "0.5", "--warmup", "0.2", "--clients", "2"]


def _run(arguments: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The benchmark as a subprocess; on a hang it gets SIGINT first, so it stops the servers it started."""
    process = subprocess.Popen([sys.executable, str(BENCH), *arguments], cwd=BENCH_DIR.parent, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        pytest.fail(f"http_bench.py {' '.join(arguments)} did not finish within {timeout:g} s")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def bench():
    """The benchmark module, imported from its path (bench/ is not a package; it imports mllp_bench)."""
    sys.path.insert(0, str(BENCH_DIR))
    spec = importlib.util.spec_from_file_location("http_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)
    sys.path.remove(str(BENCH_DIR))


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
