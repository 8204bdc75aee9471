"""What operators do with the outbox: pause and resume a destination, send dead letters again.

Each action is one short transaction (the engine owns transactions; REST and the CLI only translate the
outcome). A paused destination's rows wait in the queue; the worker looks at the flag before each claim.
A dead letter sent again keeps its idempotency key and its attempt history.
"""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from adapters.sql_store import SqlStore
from adapters.sql_tables import destinations, outbox
from engine.operator_actions import ActionRefused


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def pause(store: SqlStore, destination: str, by: str) -> None:
    _set_paused(store, destination, True, by)


def resume(store: SqlStore, destination: str, by: str) -> None:
    _set_paused(store, destination, False, by)


def _set_paused(store: SqlStore, destination: str, paused: bool, by: str) -> None:
    values = {"paused": paused, "changed_at": _now(), "changed_by": by}
    for attempt in range(2):
        try:
            with store.transaction() as tx:
                changed = tx.conn.execute(update(destinations).where(destinations.c.name == destination)
                                          .values(values)).rowcount
                if not changed:
                    tx.conn.execute(insert(destinations).values(name=destination, **values))
            return
        except IntegrityError:  # another operator created the row at the same moment: update it
            if attempt:
                raise


def retry(store: SqlStore, outbox_id: int) -> Row:
    """Send one dead letter again (PENDING, due now); the row as it is now."""
    with store.transaction() as tx:
        changed = tx.conn.execute(update(outbox).where(outbox.c.id == outbox_id, outbox.c.state == "DEAD")
                                  .values(state="PENDING", next_attempt_at=_now())).rowcount
        row = tx.conn.execute(select(outbox).where(outbox.c.id == outbox_id)).first()
    if row is None:
        raise ActionRefused(f"there is no outbox row {outbox_id}", missing=True)
    if changed != 1:
        raise ActionRefused(f"outbox row {outbox_id} is {row.state}: only dead letters (DEAD) are sent again")
    return row


def retry_dead(store: SqlStore, destination: str) -> int:
    """Send every dead letter of a destination again; how many."""
    with store.transaction() as tx:
        return int(tx.conn.execute(update(outbox).where(outbox.c.destination == destination,
                                                        outbox.c.state == "DEAD")
                                   .values(state="PENDING", next_attempt_at=_now())).rowcount)
