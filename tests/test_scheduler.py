"""Housekeeping on a real APScheduler: two engine nodes on one database, each job body on one node only
(its lease), takeover when the leader stops or dies, a failing job logged and survived."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
from sqlalchemy import select, text

from adapters.sql_store import SqlStore
from adapters.sql_tables import incidents, outbox
from engine.scheduler import JOB_NAMES, Housekeeping, JobRun, JobsConfig, ManualClock
from tests.test_jobs import change, send

T0 = datetime(2026, 3, 2, 10, 0)
LEASE = 60
FAST = JobsConfig(intervals={job: 0.05 for job in JOB_NAMES}, lease_seconds={job: LEASE for job in JOB_NAMES})


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def ran(node: Housekeeping, job: str) -> list[JobRun]:
    return [run for run in node.runs if run.job == job and run.ran]


def refused(node: Housekeeping, job: str) -> list[JobRun]:
    return [run for run in node.runs if run.job == job and not run.ran]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def nodes(store: SqlStore, store_url: str, clock: ManualClock) -> Iterator[tuple[Housekeeping, Housekeeping]]:
    """Two engine nodes (each with its own store, as two processes have) on one database and one clock."""
    other = SqlStore.from_url(store_url)
    first, second = Housekeeping(store, FAST, "node-a", clock), Housekeeping(other, FAST, "node-b", clock)
    yield first, second
    first.shutdown()
    second.shutdown()
    other.close()


def test_run_once_runs_on_the_lease_holder_and_moves_when_the_lease_expires(
        nodes: tuple[Housekeeping, Housekeeping], clock: ManualClock) -> None:
    a, b = nodes
    first = a.run_once("outbox_sweep")
    assert (first.ran, first.node, first.at, first.error) == (True, "node-a", T0, None)
    assert first.result.reclaimed == 0
    assert not b.run_once("outbox_sweep").ran
    assert b.run_once("retention").ran  # another job, another lease
    clock.advance(seconds=LEASE + 1)  # node-a died: nothing renewed its lease
    assert b.run_once("outbox_sweep").ran
    assert not a.run_once("outbox_sweep").ran
    assert [run.ran for run in a.runs] == [True, False]


def test_each_job_body_runs_on_one_node_only(store: SqlStore, nodes: tuple[Housekeeping, Housekeeping]) -> None:
    send(store, T0)
    change(store, outbox, outbox.c.state == "PENDING", state="DEAD")  # every sweep that runs finds it
    a, b = nodes
    a.start()
    b.start()
    wait_for(lambda: all(len(ran(a, job)) + len(ran(b, job)) >= 3 for job in JOB_NAMES)
             and all(refused(a, job) or refused(b, job) for job in JOB_NAMES), "every job to run three times")
    a.shutdown(release_leases=False)  # a leader handing over would let the other node run: not what is tested
    b.shutdown(release_leases=False)
    for job in JOB_NAMES:
        runners = {run.node for run in ran(a, job) + ran(b, job)}
        assert len(runners) == 1, f"{job} ran on {runners}"
        assert all(run.error is None for run in ran(a, job) + ran(b, job))
    with store.engine.connect() as conn:
        [incident] = conn.execute(select(incidents)).all()
    sweeps = len(ran(a, "outbox_sweep")) + len(ran(b, "outbox_sweep"))
    assert (incident.kind, incident.occurrences) == ("dead_letters", sweeps)  # one finding per sweep, not two


def test_a_stopping_leader_hands_its_jobs_over_at_once(nodes: tuple[Housekeeping, Housekeeping]) -> None:
    a, b = nodes
    a.run_once("outbox_sweep")
    a.run_once("stale_devices")
    a.start()
    b.start()
    wait_for(lambda: all(refused(b, job) for job in ("outbox_sweep", "stale_devices")), "node-b to be refused")
    a.shutdown()  # releases its leases
    wait_for(lambda: all(ran(b, job) for job in JOB_NAMES), "node-b to take every job over")


def test_a_dead_leaders_jobs_move_when_their_leases_expire(nodes: tuple[Housekeeping, Housekeeping],
                                                           clock: ManualClock) -> None:
    a, b = nodes
    for job in JOB_NAMES:
        a.run_once(job)
    a.start()
    b.start()
    a.shutdown(release_leases=False)  # as if its process died
    refused_before = len(refused(b, "outbox_sweep"))
    wait_for(lambda: len(refused(b, "outbox_sweep")) > refused_before + 2, "node-b to keep being refused")
    assert not any(ran(b, job) for job in JOB_NAMES)
    clock.advance(seconds=LEASE + 1)
    wait_for(lambda: all(ran(b, job) for job in JOB_NAMES), "node-b to take the expired leases")


def test_a_failing_job_is_logged_without_its_text_and_runs_again(
        store: SqlStore, nodes: tuple[Housekeeping, Housekeeping], caplog: pytest.LogCaptureFixture) -> None:
    with store.transaction() as tx:
        tx.conn.execute(text("DROP VIEW IF EXISTS bi_device_health"))  # PostgreSQL keeps what a view reads
        tx.conn.execute(text("DROP TABLE device_status"))
    a, _ = nodes
    caplog.set_level(logging.INFO, logger="vitalsstream.housekeeping")
    a.start()
    wait_for(lambda: len(ran(a, "stale_devices")) >= 3 and len(ran(a, "outbox_sweep")) >= 3, "runs after failures")
    a.shutdown()
    failures = ran(a, "stale_devices")
    assert all(run.error is not None and run.result is None for run in failures)
    assert all(run.error is None for run in ran(a, "outbox_sweep"))
    logged = [r for r in caplog.records if r.getMessage() == "housekeeping job failed"]
    assert logged and {r.job for r in logged} == {"stale_devices"}  # type: ignore[attr-defined]
    assert all(r.exc_info is None and "device_status" not in str(vars(r)) for r in logged)


def test_jobs_config_checks_names_and_derives_lease_times() -> None:
    config = JobsConfig(intervals={"outbox_sweep": 20})
    assert (config.interval("outbox_sweep"), config.interval("retention")) == (20, 3600)
    assert (config.lease_ttl("outbox_sweep"), config.lease_ttl("reconciliation")) == (60, 1800)
    assert JobsConfig(intervals={"outbox_sweep": 1}).lease_ttl("outbox_sweep") == 30  # never below 30 s
    with pytest.raises(ValueError, match="unknown housekeeping job"):
        JobsConfig(intervals={"vacuum": 60})
    with pytest.raises(ValueError, match="positive"):
        JobsConfig(intervals={"retention": 0})


def test_only_enabled_jobs_are_scheduled(store: SqlStore, clock: ManualClock) -> None:
    node = Housekeeping(store, JobsConfig(intervals={"outbox_sweep": 0.05}, enabled=frozenset({"outbox_sweep"})),
                        "node-a", clock)
    node.start()
    try:
        wait_for(lambda: len(ran(node, "outbox_sweep")) >= 2, "two sweeps")
    finally:
        node.shutdown()
    assert {run.job for run in node.runs} == {"outbox_sweep"}
    with pytest.raises(ValueError, match="unknown housekeeping job"):
        node.run_once("vacuum")
