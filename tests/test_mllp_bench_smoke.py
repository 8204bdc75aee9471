"""Smoke tests of bench/mllp_bench.py: it starts the engine (SQLite) and the python-hl7 peer, drives both,
checks the database and stops everything; the messages it generates are valid and unique.

No timing assertions: the numbers depend on the machine; only the shape of the output is checked.
"""
from __future__ import annotations

import json
import subprocess

import pytest

from tests.bench_runner import BENCH_DIR, imported, run_bench

BENCH = BENCH_DIR / "mllp_bench.py"
TINY = ["--seconds", "0.5", "--warmup", "0.2", "--connections", "2", "--only", "sqlite,peer"]


def _run(arguments: list[str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return run_bench(BENCH, arguments, timeout)


@pytest.fixture(scope="module")
def bench():
    yield from imported(BENCH)


def test_cli_drives_the_engine_and_the_peer_and_exits_0():
    result = _run(TINY)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "engine-sqlite" in result.stdout
    assert "python-hl7" in result.stdout
    assert "ratio to python-hl7" in result.stdout
    assert "MISMATCH" not in result.stdout
    assert "ok: " in result.stdout  # the database check ran for the engine


def test_json_output_has_both_contenders_and_a_ratio():
    result = _run(TINY + ["--json"])
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert {row["contender"] for row in report["results"]} == {"engine-sqlite", "python-hl7"}
    engine = next(row for row in report["results"] if row["contender"] == "engine-sqlite")
    assert engine["store"]["ok"] and engine["store"]["missing"] == 0
    assert engine["store"]["rows"] == engine["acked"] > 0
    assert [row["connections"] for row in report["ratios"]] == [2]
    assert "engine-sqlite / python-hl7" in report["ratios"][0]


def test_messages_are_unique_typical_pcd01_with_eight_vitals(bench):
    from transforms.hl7.charset import decode
    from transforms.hl7.header import read_header
    from transforms.hl7.parser import parse
    from transforms.oru import transform

    feed = bench.Feed(seed=1)
    sent = [feed.next("t-S1-") for _ in range(3 * bench.BEDS)]
    assert len({control_id for control_id, _ in sent}) == len(sent)
    patients = set()
    for control_id, data in sent:
        assert 1300 <= len(data) <= 1700
        message = parse(decode(data))
        header = read_header(message)
        assert header.control_id == control_id
        readings = transform(message, header)
        assert len(readings) == 8
        patients.add(readings[0].patient_id)
    assert len(patients) == bench.BEDS


def test_msa_reads_the_code_and_the_acknowledged_control_id(bench):
    ack = b"MSH|^~\\&|VITALS|HOSP|MONITOR|ICU-3|20250314101500||ACK^R01^ACK|A1|P|2.6\rMSA|AA|t-S1-0000001\r"
    assert bench.msa(ack) == ("AA", "t-S1-0000001")
    assert bench.msa(b"MSH|^~\\&|X\r") == ("", "")
