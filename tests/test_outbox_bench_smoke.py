"""Smoke tests of bench/outbox_bench.py: it queues a few records in SQLite, delivers them through the outbox
worker and straight from zeep to fresh mock EHRs, checks what the EHR received and stops everything.

No timing assertions: the numbers depend on the machine; only the shape of the output and the checks are tested.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.bench_runner import BENCH_DIR, imported, run_bench

BENCH = BENCH_DIR / "outbox_bench.py"
TINY = ["--rows", "20", "--workers", "2", "--only", "sqlite,peer"]


def _run(arguments: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_bench(BENCH, arguments, timeout)


@pytest.fixture(scope="module")
def bench():
    yield from imported(BENCH)


def test_cli_delivers_through_the_outbox_and_the_peer_and_exits_0():
    result = _run(TINY)
    assert result.returncode == 0, result.stdout + result.stderr
    for contender in ("outbox-sqlite", "zeep-peer"):
        assert contender in result.stdout
    assert "ratio to zeep-peer" in result.stdout
    assert "MISMATCH" not in result.stdout
    assert "ok: 20 of 20 keys distinct" in result.stdout  # the EHR's state file was checked
    assert "20 SENT in 20 attempts" in result.stdout  # and the outbox rows


def test_a_bad_option_is_refused_with_status_2():
    result = _run(["--only", "sqlite,mssql"])
    assert result.returncode == 2
    assert "choose from sqlite, postgres, peer" in result.stderr


def test_the_records_are_one_observations_request_per_message_for_patients_in_turn(bench):
    requests = bench.expected_requests(bench.make_messages(bench.PATIENTS + 3))
    assert [r.key for r in requests] == [f"obs:{n}:1" for n in range(1, bench.PATIENTS + 4)]
    assert {r.kind for r in requests} == {"observations"}
    assert len({r.patient_id for r in requests}) == bench.PATIENTS  # then the first patients again
    assert requests[bench.PATIENTS].patient_id == requests[0].patient_id
    payload = json.loads(requests[0].payload)
    assert len(payload["readings"]) == 8 and payload["message_id"] == 1 and payload["route"] == "bench"


def _ehr_state(path: Path, arrived: list) -> Path:
    """A mock EHR state file (its real received log) holding ``arrived`` in this order."""
    from adapters.mock_ehr.state import ReceivedLog

    received = ReceivedLog.open(path, durable=False)
    for request in arrived:
        received.record(request.kind, request.key, request.patient_id, {})
    received.close()
    return path


def test_the_received_check_holds_when_every_record_arrived_once_in_order(bench, tmp_path: Path):
    expected = bench.expected_requests(bench.make_messages(3))
    check = bench.received_check(_ehr_state(tmp_path / "ehr.jsonl", expected), expected, ordered=True)
    assert bench.judged(check, len(expected))["ok"]


def test_the_received_check_finds_a_missing_and_a_repeated_record(bench, tmp_path: Path):
    expected = bench.expected_requests(bench.make_messages(3))
    first, second, _never_sent = expected
    check = bench.received_check(_ehr_state(tmp_path / "ehr.jsonl", [first, second, first]), expected, ordered=True)
    assert (check["received"], check["missing"], check["repeated"]) == (2, 1, 1)
    assert not bench.judged(check, len(expected))["ok"]


def test_the_received_check_finds_a_newer_record_that_overtook_an_older_one(bench, tmp_path: Path):
    same_patient = [bench.Request("observations", f"obs:{n}:1", "P1", "{}") for n in (1, 2)]
    state = _ehr_state(tmp_path / "ehr.jsonl", list(reversed(same_patient)))
    check = bench.received_check(state, same_patient, ordered=True)
    assert check["out_of_order_patients"] == 1
    assert not bench.judged(check, len(same_patient))["ok"]
    assert bench.judged(bench.received_check(state, same_patient, ordered=False), len(same_patient))["ok"]
