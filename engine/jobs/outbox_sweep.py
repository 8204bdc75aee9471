"""The outbox retry sweep: what the outbox worker cannot see for itself.

1. A SENDING row whose claim lapsed (``claimed_until < now``: the node sending it died or hung) goes back
   to PENDING, so any node's worker sends it again (with the same idempotency key: the receiver can tell).
2. Per destination, DEAD rows present raise a ``dead_letters`` incident (cleared when none are left:
   replayed or suppressed by an operator).
3. Per destination, records that failed at least once and still wait after ``down_after_minutes``
   raise a ``destination_down`` incident (cleared when the queue drains). A paused destination is
   not down: its rows wait on purpose.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select, true, update

from adapters.sql_store import SqlStore, utc_naive
from adapters.sql_tables import destinations, outbox
from engine.incidents import active_keys, clear_incident, raise_incident

DEFAULT_DOWN_AFTER_MINUTES = 5.0
WAITING = ("PENDING", "SENDING")


@dataclass(frozen=True)
class OutboxSweepResult:
    reclaimed: int  # lapsed SENDING claims put back to PENDING
    dead_letters: dict[str, int] = field(default_factory=dict)  # destination -> DEAD rows
    failing: dict[str, int] = field(default_factory=dict)  # destination -> failed records waiting too long
    raised: list[str] = field(default_factory=list)  # incidents opened now, as kind:subject
    cleared: list[str] = field(default_factory=list)

    @property
    def noteworthy(self) -> bool:
        return bool(self.reclaimed or self.raised or self.cleared)


def sweep_outbox(store: SqlStore, now: datetime,
                 down_after_minutes: float = DEFAULT_DOWN_AFTER_MINUTES) -> OutboxSweepResult:
    moment = utc_naive(now)
    with store.transaction() as tx:
        reclaimed = tx.conn.execute(
            update(outbox).where(outbox.c.state == "SENDING", outbox.c.claimed_until < moment)
            .values(state="PENDING", claimed_by=None, claimed_until=None)).rowcount
    with store.transaction() as tx:
        dead = _dead_letters(tx.conn)
        failing, oldest = _failing(tx.conn, moment - timedelta(minutes=down_after_minutes))
        raised, cleared = [], []
        for destination, count in sorted(dead.items()):
            if raise_incident(tx.conn, "dead_letters", destination, "warning",
                              f"destination {destination}: {count} record(s) in the dead letters",
                              {"destination": destination, "dead_records": count}, moment):
                raised.append(f"dead_letters:{destination}")
        for destination, count in sorted(failing.items()):
            waited = int((moment - oldest[destination]).total_seconds() // 60)
            if raise_incident(tx.conn, "destination_down", destination, "critical",
                              f"destination {destination}: {count} record(s) failing, the oldest waiting "
                              f"{waited} min", {"destination": destination, "failing_records": count,
                                                "oldest_created_at": oldest[destination]}, moment):
                raised.append(f"destination_down:{destination}")
        for kind, present in (("dead_letters", dead), ("destination_down", failing)):
            for destination in sorted(active_keys(tx.conn, kind) - set(present)):
                clear_incident(tx.conn, kind, destination, moment)
                cleared.append(f"{kind}:{destination}")
    return OutboxSweepResult(reclaimed, dead, failing, raised, cleared)


def _dead_letters(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(outbox.c.destination, func.count()).where(outbox.c.state == "DEAD")
                        .group_by(outbox.c.destination))
    return {destination: int(count) for destination, count in rows}


def _failing(conn: Connection, waiting_since: datetime) -> tuple[dict[str, int], dict[str, datetime]]:
    """Per destination not paused: records still waiting that failed at least once and were created
    before ``waiting_since``, and the oldest one's creation time."""
    paused = select(destinations.c.name).where(destinations.c.paused == true())
    rows = conn.execute(
        select(outbox.c.destination, func.count(), func.min(outbox.c.created_at))
        .where(outbox.c.state.in_(WAITING), outbox.c.attempts > 0, outbox.c.created_at < waiting_since,
               outbox.c.destination.not_in(paused))
        .group_by(outbox.c.destination))
    counts, oldest = {}, {}
    for destination, count, first in rows:
        counts[destination], oldest[destination] = int(count), first
    return counts, oldest
