"""The outbox worker: delivers outbox rows to their destinations, in order per patient, with retries.

One lane per destination: a dispatcher thread claims due rows and hands them to the lane's senders
(``concurrency`` threads). A row is due when it is PENDING and its next attempt time has come, or SENDING
with a lapsed claim (the node sending it died). A row is claimed only when no older row of the same
destination and patient is still PENDING or SENDING, so a newer result never overtakes an older one;
dead letters do not hold the queue (an operator decides about them).

Claims are row locks that skip locked rows (PostgreSQL SKIP LOCKED, SQL Server READPAST; SQLite has one
writer), so several engine nodes on one database send each row once. A node that dies mid-send leaves its
rows SENDING until their claim lapses; then any node sends them again with the same idempotency key. A
node restarted under the same name (VITALS_NODE_NAME) takes its own rows back at once when it starts.

Outcomes, each recorded as an outbox_attempts row: sent (SENT, the receiver's id kept); a transient
failure (PENDING again after an exponential backoff with jitter, capped; DEAD after the retry limit); a
permanent failure (DEAD at once). Payloads (patient data) never reach the logs.
"""
from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, bindparam, exists, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import SQLAlchemyError

from adapters.delivery import DeliveryFailed, Sender
from adapters.sql_store import SqlStore, utc_naive
from adapters.sql_tables import destinations, outbox, outbox_attempts

log = logging.getLogger("vitalsstream.outbox")

_earlier = outbox.alias("earlier")
# Written into the SQL as literals: SQLite uses a partial index (WHERE state IN (...)) only when the query
# names the same constants (measured with 2,000 rows queued: 18.7 ms a claim with parameters, 0.1 ms with).
_OPEN = ("PENDING", "SENDING")


def _open(column: Any) -> Any:
    return column.in_(bindparam(f"open_{column.table.name}", list(_OPEN), expanding=True, literal_execute=True))


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: attempt n waits first * 2**(n-1), capped, times 0.5-1.0."""

    first_seconds: float = 1.0
    max_seconds: float = 300.0
    max_attempts: int = 60

    def delay(self, attempts: int, jitter: Callable[[], float] = random.random) -> float:
        ceiling = min(self.max_seconds, self.first_seconds * 2 ** min(attempts - 1, 62))
        return ceiling * (0.5 + jitter() / 2)


@dataclass
class Lane:
    """One destination: how it sends, how many at once, how it retries, how long a claim holds."""

    name: str
    sender: Sender
    concurrency: int = 4
    backoff: Backoff = Backoff()
    claim_seconds: float = 60.0  # longer than a send can take (the sender's timeout), or a row is sent twice


@dataclass(frozen=True)
class Outcome:
    state: str  # SENT, PENDING (retry later) or DEAD
    remote_id: str | None = None
    error: str | None = None

    @property
    def attempt_outcome(self) -> str:
        return {"SENT": "sent", "PENDING": "retry", "DEAD": "dead"}[self.state]


def _now() -> datetime:
    return datetime.now(UTC)


class OutboxWorker:
    def __init__(self, store: SqlStore, lanes: Sequence[Lane], node: str,
                 clock: Callable[[], datetime] = _now, poll_seconds: float = 1.0):
        self.store = store
        self.lanes = {lane.name: lane for lane in lanes}
        self.node = node
        self.clock = clock
        self.poll_seconds = poll_seconds
        self._stopping = threading.Event()
        self._wakeups = {name: threading.Event() for name in self.lanes}
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if not self.lanes:
            return
        self.release_own_claims()
        for lane in self.lanes.values():
            thread = threading.Thread(target=self._run_lane, args=(lane,), name=f"outbox-{lane.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        """New rows were committed: look now instead of at the next poll."""
        for event in self._wakeups.values():
            event.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming; sends in flight finish (bounded by their timeout) and are recorded."""
        self._stopping.set()
        self.wake()
        for thread in self._threads:
            thread.join(timeout)
        for lane in self.lanes.values():
            lane.sender.close()

    def _run_lane(self, lane: Lane) -> None:
        wakeup = self._wakeups[lane.name]
        in_flight = threading.Semaphore(lane.concurrency)
        with ThreadPoolExecutor(lane.concurrency, thread_name_prefix=f"outbox-{lane.name}") as senders:
            while not self._stopping.is_set():
                wakeup.clear()
                try:
                    rows = [] if self.paused(lane.name) else self._claim_free(lane, in_flight)
                except SQLAlchemyError as error:
                    log.warning("outbox claim failed", extra={"destination": lane.name,
                                                              "error": type(error).__name__})
                    rows = []
                for row in rows:
                    senders.submit(self._deliver_and_release, lane, row, in_flight, wakeup)
                if not rows:
                    wakeup.wait(self.poll_seconds)

    def _claim_free(self, lane: Lane, in_flight: threading.Semaphore) -> list[Row]:
        free = 0
        while free < lane.concurrency and in_flight.acquire(blocking=False):
            free += 1
        if free == 0:
            return []
        rows = self.claim(lane, free)
        for _ in range(free - len(rows)):
            in_flight.release()
        return rows

    def _deliver_and_release(self, lane: Lane, row: Row, in_flight: threading.Semaphore,
                             wakeup: threading.Event) -> None:
        try:
            self.deliver(lane, row)
        finally:
            in_flight.release()
            wakeup.set()  # a slot is free, and this patient's next row may be due

    def release_own_claims(self) -> int:
        """Rows this node name was sending when it last stopped (killed): queued again, same keys."""
        try:
            with self.store.transaction() as tx:
                released = tx.conn.execute(update(outbox).where(outbox.c.state == "SENDING",
                                                                outbox.c.claimed_by == self.node)
                                           .values(state="PENDING", claimed_by=None, claimed_until=None)).rowcount
        except SQLAlchemyError as error:  # the database is down: the claims lapse on their own
            log.warning("outbox claims not released", extra={"error": type(error).__name__})
            return 0
        if released:
            log.warning("outbox rows this node was sending when it stopped are queued again",
                        extra={"rows": released, "node": self.node})
        return int(released)

    # The three steps, public so tests and the benchmark can drive them one at a time.

    def paused(self, name: str) -> bool:
        with self.store.engine.connect() as conn:
            return bool(conn.execute(select(destinations.c.paused).where(destinations.c.name == name)).scalar())

    def claim(self, lane: Lane, limit: int) -> list[Row]:
        """Claim up to ``limit`` due rows of the lane for this node (state SENDING), oldest first."""
        now = utc_naive(self.clock())
        due = _due(lane.name, now)
        with self.store.engine.connect() as conn:  # a read first: an idle poll never takes the write lock
            if conn.execute(select(outbox.c.id).where(due).limit(1)).first() is None:
                return []
        until = now + timedelta(seconds=lane.claim_seconds)
        with self.store.transaction() as tx:
            ids = list(tx.conn.execute(claimable(lane.name, now, limit)).scalars())
            if not ids:
                return []
            # Ready is checked again: where the database does not lock what it selected, a row another node
            # claimed meanwhile is not taken twice.
            tx.conn.execute(update(outbox).where(outbox.c.id.in_(ids), _ready(now))
                            .values(state="SENDING", claimed_by=self.node, claimed_until=until))
            return list(tx.conn.execute(select(outbox).where(outbox.c.id.in_(ids), outbox.c.claimed_by == self.node,
                                                             outbox.c.claimed_until == until).order_by(outbox.c.id)))

    def deliver(self, lane: Lane, row: Row) -> Outcome:
        """Send one claimed row and record the outcome."""
        started, clock_started = time.monotonic(), self.clock()
        attempt = row.attempts + 1
        try:
            remote_id = lane.sender.send(row.kind, row.idempotency_key, json.loads(row.payload))
            outcome = Outcome("SENT", remote_id=remote_id or None)
        except DeliveryFailed as failed:
            final = failed.permanent or attempt >= lane.backoff.max_attempts
            outcome = Outcome("DEAD" if final else "PENDING", error=failed.reason)
        except Exception as error:  # a bug in a sender: retried like a transient failure, never fatal
            log.error("sender failed unexpectedly", extra={"destination": lane.name, "error": type(error).__name__})
            final = attempt >= lane.backoff.max_attempts
            outcome = Outcome("DEAD" if final else "PENDING", error=f"unexpected {type(error).__name__}")
        self._record(lane, row, attempt, outcome, clock_started, time.monotonic() - started)
        return outcome

    def _record(self, lane: Lane, row: Row, attempt: int, outcome: Outcome, started: datetime,
                seconds: float) -> None:
        now = utc_naive(self.clock())
        retry_at = now + timedelta(seconds=lane.backoff.delay(attempt)) if outcome.state == "PENDING" else now
        try:
            with self.store.transaction() as tx:
                changed = tx.conn.execute(
                    update(outbox).where(outbox.c.id == row.id, outbox.c.state == "SENDING",
                                         outbox.c.claimed_by == self.node)
                    .values(state=outcome.state, attempts=attempt, next_attempt_at=retry_at, claimed_by=None,
                            claimed_until=None, remote_id=outcome.remote_id, last_error=outcome.error,
                            sent_at=now if outcome.state == "SENT" else None)).rowcount
                tx.conn.execute(insert(outbox_attempts).values(
                    outbox_id=row.id, attempt=attempt, node=self.node, started_at=utc_naive(started),
                    duration_ms=round(seconds * 1000), outcome=outcome.attempt_outcome, remote_id=outcome.remote_id,
                    error=outcome.error))
        except SQLAlchemyError as error:  # the row stays SENDING; when its claim lapses it is sent again, same key
            log.error("outbox outcome not recorded", extra={"destination": lane.name, "outbox_id": row.id,
                                                            "error": type(error).__name__})
            return
        fields: dict[str, Any] = {"destination": lane.name, "outbox_id": row.id, "kind": row.kind,
                                  "attempt": attempt, "state": outcome.state}
        if changed != 1:
            log.warning("outbox claim had lapsed before the outcome was recorded", extra=fields)
        elif outcome.state == "DEAD":  # the reason stays in the row: a receiver's error text may name a patient
            log.warning("outbox row dead-lettered", extra=fields)
        elif outcome.state == "PENDING":
            log.info("outbox delivery failed, will retry", extra=fields)


def claimable(destination: str, now: datetime, limit: int) -> Select:
    """The ids to claim, locked, skipping rows another node has locked (PostgreSQL SKIP LOCKED, SQL Server
    READPAST; SQLite has one writer at a time)."""
    return (select(outbox.c.id).where(_due(destination, now)).order_by(outbox.c.id).limit(limit)
            .with_for_update(skip_locked=True)
            .with_hint(outbox, "WITH (UPDLOCK, ROWLOCK, READPAST)", "mssql"))


def _due(destination: str, now: datetime) -> Any:
    """Rows of ``destination`` ready to send, whose patient has no older row still waiting or in flight."""
    older_open = exists().where(_earlier.c.destination == outbox.c.destination,
                                _earlier.c.patient_id == outbox.c.patient_id, _earlier.c.id < outbox.c.id,
                                _open(_earlier.c.state))
    return and_(outbox.c.destination == destination, _open(outbox.c.state), _ready(now), ~older_open)


def _ready(now: datetime) -> Any:
    """Waiting and due, or sending under a claim that has lapsed."""
    return or_(and_(outbox.c.state == "PENDING", outbox.c.next_attempt_at <= now),
               and_(outbox.c.state == "SENDING", outbox.c.claimed_until < now))
