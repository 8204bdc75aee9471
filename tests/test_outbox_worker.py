"""The outbox worker: order per patient, retries with backoff, dead letters, claims across nodes, pause.

The sender here is a scripted in-process Sender (the contract of adapters/delivery.py) so each outcome can be
chosen; tests/test_outbox_ehr.py runs the same worker against the mock EHR over real SOAP.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from adapters.delivery import DeliveryFailed
from adapters.sql_store import SqlStore
from adapters.sql_tables import outbox, outbox_attempts
from engine.channel import Channel, Route
from engine.outbox import Backoff, Lane, OutboxWorker
from engine.outbox_actions import pause, resume
from engine.outbox_rows import OutboxTarget
from tests.messages import oru

ROUTE = Route(name="icu", outbox=(OutboxTarget("ehr", readings=True, alerts=False),))


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class ScriptedSender:
    """Records every send; ``script`` may fail a send by raising (keyed by idempotency key)."""

    def __init__(self, script: Callable[[str, dict[str, Any]], None] = lambda key, payload: None):
        self.script = script
        self.sent: list[tuple[str, str]] = []  # (key, patient)
        self.lock = threading.Lock()
        self.closed = False

    def send(self, kind: str, key: str, payload: dict[str, Any]) -> str:
        self.script(key, payload)
        with self.lock:
            self.sent.append((key, payload["patient_id"]))
            return f"EHR-{len(self.sent)}"

    def close(self) -> None:
        self.closed = True


def queue(store: SqlStore, *patients: str, clock: Callable[[], datetime] | None = None) -> list[int]:
    channel = Channel(store, clock=clock or Clock())
    ids = []
    for number, patient in enumerate(patients, 1):
        receipt = channel.dispatch(oru(f"Q-{number}", patient, "20261121100000", [("heart_rate", 70 + number)]),
                                   ROUTE)
        ids.append(receipt.message_id)
    return ids


def states(store: SqlStore) -> list[tuple[str, str, int]]:
    with store.engine.connect() as conn:
        return [(r.patient_id, r.state, r.attempts)
                for r in conn.execute(select(outbox).order_by(outbox.c.id))]


def wait_for(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def worker_factory(store: SqlStore, clock: Clock) -> Iterator[Callable[..., OutboxWorker]]:
    started: list[OutboxWorker] = []

    def make(*lanes: Lane, node: str = "node-a", start: bool = False) -> OutboxWorker:
        worker = OutboxWorker(store, lanes, node, clock=clock, poll_seconds=0.05)
        if start:
            worker.start()
            started.append(worker)
        return worker

    yield make
    for worker in started:
        worker.stop()


def test_a_claimed_row_is_sent_and_recorded_with_the_receivers_id(store: SqlStore, worker_factory) -> None:
    queue(store, "P1")
    sender = ScriptedSender()
    lane = Lane("ehr", sender)
    worker = worker_factory(lane)
    [row] = worker.claim(lane, 10)
    assert (row.state, row.claimed_by) == ("SENDING", "node-a")
    assert worker.deliver(lane, row).state == "SENT"
    with store.engine.connect() as conn:
        sent = conn.execute(select(outbox)).one()
        attempt = conn.execute(select(outbox_attempts)).one()
    assert (sent.state, sent.remote_id, sent.attempts, sent.claimed_by) == ("SENT", "EHR-1", 1, None)
    assert (attempt.outcome, attempt.attempt, attempt.node, attempt.remote_id) == ("sent", 1, "node-a", "EHR-1")


def test_a_newer_row_of_a_patient_waits_for_the_older_one(store: SqlStore, worker_factory, clock: Clock) -> None:
    queue(store, "P1", "P2", "P1")
    failing = {"obs:1:1"}

    def script(key: str, payload: dict[str, Any]) -> None:
        if key in failing:
            raise DeliveryFailed("EHR answered 503")
    lane = Lane("ehr", ScriptedSender(script), backoff=Backoff(first_seconds=10))
    worker = worker_factory(lane)
    claimed = worker.claim(lane, 10)
    assert [r.patient_id for r in claimed] == ["P1", "P2"]  # P1's second result is not due before its first
    for row in claimed:
        worker.deliver(lane, row)
    assert states(store) == [("P1", "PENDING", 1), ("P2", "SENT", 1), ("P1", "PENDING", 0)]
    assert worker.claim(lane, 10) == []  # P1's first waits for its backoff; its second waits behind it
    failing.clear()
    clock.now += timedelta(seconds=11)
    [first] = worker.claim(lane, 10)
    worker.deliver(lane, first)
    [second] = worker.claim(lane, 10)
    worker.deliver(lane, second)
    assert states(store) == [("P1", "SENT", 2), ("P2", "SENT", 1), ("P1", "SENT", 1)]


def test_a_permanent_failure_is_a_dead_letter_at_once_and_does_not_hold_the_queue(
        store: SqlStore, worker_factory) -> None:
    queue(store, "P1", "P1")

    def script(key: str, payload: dict[str, Any]) -> None:
        if key == "obs:1:1":
            raise DeliveryFailed("Client fault: unknown patient", permanent=True)
    lane = Lane("ehr", ScriptedSender(script))
    worker = worker_factory(lane)
    worker.deliver(lane, worker.claim(lane, 10)[0])
    worker.deliver(lane, worker.claim(lane, 10)[0])
    assert states(store) == [("P1", "DEAD", 1), ("P1", "SENT", 1)]
    with store.engine.connect() as conn:
        dead = conn.execute(select(outbox).where(outbox.c.state == "DEAD")).one()
    assert dead.last_error == "Client fault: unknown patient"


def test_transient_failures_back_off_and_end_as_dead_letters_at_the_limit(
        store: SqlStore, worker_factory, clock: Clock) -> None:
    queue(store, "P1")

    def script(key: str, payload: dict[str, Any]) -> None:
        raise DeliveryFailed("timed out")
    lane = Lane("ehr", ScriptedSender(script), backoff=Backoff(first_seconds=2, max_seconds=5, max_attempts=4))
    worker = worker_factory(lane)
    waits = []
    for _ in range(4):
        clock.now += timedelta(seconds=10)
        worker.deliver(lane, worker.claim(lane, 10)[0])
        with store.engine.connect() as conn:
            row = conn.execute(select(outbox)).one()
        waits.append((row.next_attempt_at - clock.now.replace(tzinfo=None)).total_seconds())
    assert states(store) == [("P1", "DEAD", 4)]
    assert 1 <= waits[0] <= 2 and 2 <= waits[1] <= 4 and 2.5 <= waits[2] <= 5  # doubling with jitter, capped
    with store.engine.connect() as conn:
        outcomes = list(conn.execute(select(outbox_attempts.c.outcome).order_by(outbox_attempts.c.id)).scalars())
    assert outcomes == ["retry", "retry", "retry", "dead"]


def test_backoff_doubles_with_jitter_up_to_its_cap() -> None:
    backoff = Backoff(first_seconds=1, max_seconds=60)
    assert [backoff.delay(n, jitter=lambda: 1.0) for n in (1, 2, 3, 7, 8, 500)] == [1, 2, 4, 60, 60, 60]
    assert [backoff.delay(n, jitter=lambda: 0.0) for n in (1, 2, 3)] == [0.5, 1, 2]


def test_a_lapsed_claim_is_taken_over_by_another_node(store: SqlStore, worker_factory, clock: Clock) -> None:
    queue(store, "P1")
    lane = Lane("ehr", ScriptedSender(), claim_seconds=30)
    dead_node, other = worker_factory(lane, node="node-a"), worker_factory(lane, node="node-b")
    assert len(dead_node.claim(lane, 10)) == 1  # node-a dies without sending
    assert other.claim(lane, 10) == []
    clock.now += timedelta(seconds=31)
    [row] = other.claim(lane, 10)
    assert other.deliver(lane, row).state == "SENT"
    assert row.claimed_by == "node-b"


def test_a_paused_destination_keeps_its_rows_until_resumed(store: SqlStore, worker_factory) -> None:
    sender = ScriptedSender()
    pause(store, "ehr", by="ops.kim")
    worker_factory(Lane("ehr", sender), start=True)
    queue(store, "P1", "P2")
    time.sleep(0.3)  # several polls: nothing may be sent while paused (no timing is asserted)
    assert sender.sent == []
    resume(store, "ehr", by="ops.kim")
    wait_for(lambda: [s for _, s, _ in states(store)] == ["SENT", "SENT"])
    assert len(sender.sent) == 2


def test_the_running_worker_delivers_everything_in_order_per_patient(store: SqlStore, worker_factory) -> None:
    patients = [f"P{n % 5}" for n in range(40)]
    sender = ScriptedSender()
    worker = worker_factory(Lane("ehr", sender, concurrency=4), start=True)
    ids = queue(store, *patients)
    worker.wake()
    wait_for(lambda: len(sender.sent) == 40)
    for patient in set(patients):
        theirs = [key for key, p in sender.sent if p == patient]
        expected = [f"obs:{mid}:1" for mid, p in zip(ids, patients, strict=True) if p == patient]
        assert theirs == expected
    worker.stop()
    assert sender.closed


@pytest.mark.postgres
def test_two_nodes_on_one_postgresql_database_send_each_row_once(postgres_url: str) -> None:
    from engine.migrations import upgrade
    store = SqlStore.from_url(postgres_url)
    upgrade(store.engine)
    try:
        sender = ScriptedSender()
        workers = [OutboxWorker(store, [Lane("ehr", sender, concurrency=4)], node, poll_seconds=0.01)
                   for node in ("node-a", "node-b")]
        patients = [f"P{n % 7}" for n in range(120)]
        for worker in workers:
            worker.start()
        ids = queue(store, *patients, clock=lambda: datetime.now(UTC))
        wait_for(lambda: len(sender.sent) >= 120, seconds=60)
        for worker in workers:
            worker.stop()
        keys = [key for key, _ in sender.sent]
        assert sorted(keys) == sorted({f"obs:{mid}:1" for mid in ids}) and len(keys) == 120
        for patient in set(patients):
            expected = [f"obs:{mid}:1" for mid, p in zip(ids, patients, strict=True) if p == patient]
            assert [key for key, p in sender.sent if p == patient] == expected
        with store.engine.connect() as conn:
            nodes = set(conn.execute(select(outbox_attempts.c.node)).scalars())
            attempts = conn.execute(select(func.count()).select_from(outbox_attempts)).scalar_one()
        assert attempts == 120 and nodes == {"node-a", "node-b"}
    finally:
        store.close()


def test_an_outcome_for_a_claim_taken_over_meanwhile_does_not_overwrite_it(
        store: SqlStore, worker_factory, clock: Clock) -> None:
    queue(store, "P1")
    lane = Lane("ehr", ScriptedSender(), claim_seconds=30)
    slow = worker_factory(lane, node="node-a")
    [row] = slow.claim(lane, 10)
    with store.engine.begin() as conn:  # node-b took it over after the claim lapsed
        conn.execute(update(outbox).values(claimed_by="node-b"))
    slow.deliver(lane, row)
    assert states(store) == [("P1", "SENDING", 0)]  # node-b's claim stands; the attempt is still on record
    with store.engine.connect() as conn:
        assert conn.execute(select(outbox_attempts.c.node)).scalar_one() == "node-a"


def test_claims_skip_rows_other_nodes_hold_on_postgresql_and_sql_server() -> None:
    from sqlalchemy.dialects import mssql, postgresql

    from engine.outbox import claimable
    statement = claimable("ehr", datetime(2026, 11, 21), 4)
    assert str(statement.compile(dialect=postgresql.dialect())).endswith("FOR UPDATE SKIP LOCKED")
    assert "FROM outbox WITH (UPDLOCK, ROWLOCK, READPAST)" in str(statement.compile(dialect=mssql.dialect()))
