"""What operators change by hand: alert states and alert bands. Each change is one short transaction,
owned here (the engine owns transactions; the REST and SOAP adapters only translate the outcome).

Acknowledge: open -> acknowledged. Resolve: open or acknowledged -> resolved (a clinical act: an alert may
be resolved without an acknowledgement first). The UPDATE is guarded by the states it may start from, so
of two callers racing, one changes the row and the other is refused. A resolve queues, in the same
transaction, a resolve notice (``alert_resolved``) for every destination that was queued the alert.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from adapters.sql_store import SqlStore, StoreTransaction
from adapters.sql_tables import alert_thresholds as bands
from adapters.sql_tables import alerts, outbox
from engine.outbox_rows import alert_row

# action -> (states it may start from, the state it leaves, the column prefix recording who and when)
ACTIONS = {"acknowledge": (("open",), "acknowledged", "acknowledged"),
           "resolve": (("open", "acknowledged"), "resolved", "resolved")}


class ActionRefused(Exception):
    """Why an operator action cannot be done, in plain words; ``missing`` when the alert does not exist."""

    def __init__(self, text: str, missing: bool = False):
        super().__init__(text)
        self.missing = missing


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def change_alert_state(store: SqlStore, alert_id: int, action: str, by: str) -> Row:
    """Acknowledge or resolve one alert, recording who and when; the alert as it is now."""
    starts, leaves, prefix = ACTIONS[action]
    moment = _now()
    with store.transaction() as tx:
        changed = tx.conn.execute(
            update(alerts).where(alerts.c.id == alert_id, alerts.c.state.in_(starts))
            .values({"state": leaves, "updated_at": moment, f"{prefix}_at": moment, f"{prefix}_by": by})).rowcount
        row = tx.conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
        if changed == 1 and leaves == "resolved" and row is not None:
            _queue_resolve_notices(tx, row, moment)
    if row is None:
        raise ActionRefused(f"there is no alert {alert_id}", missing=True)
    if changed != 1:
        already = "already " if row.state == leaves else ""
        raise ActionRefused(f"alert {alert_id} is {already}{row.state}: it cannot be {leaves} now")
    return row


def _queue_resolve_notices(tx: StoreTransaction, alert: Row, now: datetime) -> None:
    told = tx.conn.execute(select(outbox.c.destination, outbox.c.route, outbox.c.message_id)
                           .where(outbox.c.alert_id == alert.id, outbox.c.kind == "alert",
                                  outbox.c.state != "SUPPRESSED").order_by(outbox.c.id))
    tx.add_outbox([alert_row(t.destination, "alert_resolved", alert, t.route, t.message_id, now) for t in told])


def band_scope(vital: str, patient_id: str | None, device_id: str | None) -> ColumnElement[bool]:
    """The one band row of a vital for a patient, a device, or (neither) everyone."""
    return and_(bands.c.vital == vital,
                bands.c.patient_id.is_(None) if patient_id is None else bands.c.patient_id == patient_id,
                bands.c.device_id.is_(None) if device_id is None else bands.c.device_id == device_id)


def put_band(store: SqlStore, vital: str, patient_id: str | None, device_id: str | None,
             values: dict[str, Any]) -> bool:
    """Update the scope's band, else insert it; True when inserted. A concurrent insert of the same scope
    (the unique index refuses ours) is retried once, as the update it now is."""
    where = band_scope(vital, patient_id, device_id)
    row = {"vital": vital, "patient_id": patient_id, "device_id": device_id, **values, "updated_at": _now()}
    for attempt in range(2):
        try:
            with store.transaction() as tx:
                if tx.conn.execute(update(bands).where(where).values(row)).rowcount:
                    return False
                tx.conn.execute(insert(bands).values(row))
                return True
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


def delete_band(store: SqlStore, vital: str, patient_id: str | None, device_id: str | None) -> bool:
    """Remove a patient's or device's band; False when there was none."""
    with store.transaction() as tx:
        return bool(tx.conn.execute(delete(bands).where(band_scope(vital, patient_id, device_id))).rowcount)
