"""Reads for the SOAP operations, and table rows -> contract types (times UTC, made aware)."""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import or_
from sqlalchemy.engine import Row

from adapters.rest.alerts import ALERTS
from adapters.rest.readings import READINGS
from adapters.soap.types import Alert, StoredReading
from adapters.sql_store import SqlStore, utc_naive
from adapters.sql_tables import alerts as a
from adapters.sql_tables import device_readings as r

MAX_LIMIT = 1000

_READING_FIELDS = {"Id": "id", "MessageId": "message_id", "PatientId": "patient_id", "DeviceId": "device_id",
                   "Vital": "vital", "Value": "value", "Unit": "unit", "Comparator": "comparator",
                   "ObservedAt": "observed_at", "SourceValue": "source_value", "SourceUnit": "source_unit"}
_ALERT_FIELDS = {"Id": "id", "PatientId": "patient_id", "DeviceId": "device_id", "Vital": "vital",
                 "Severity": "severity", "Kind": "kind", "State": "state", "Message": "message", "Value": "value",
                 "LastValue": "last_value", "Occurrences": "occurrences", "FirstSeenAt": "first_seen_at",
                 "LastSeenAt": "last_seen_at", "AcknowledgedAt": "acknowledged_at",
                 "AcknowledgedBy": "acknowledged_by", "ResolvedAt": "resolved_at", "ResolvedBy": "resolved_by"}


def _aware(value: object) -> object:
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value


def reading(row: Row) -> StoredReading:
    data = row._mapping
    return StoredReading(**{name: _aware(data[column]) for name, column in _READING_FIELDS.items()})


def alert(row: Row) -> Alert:
    data = row._mapping
    return Alert(**{name: _aware(data[column]) for name, column in _ALERT_FIELDS.items()})


def stored(store: SqlStore, message_id: int) -> tuple[list[StoredReading], list[Alert]]:
    """The readings a message stored and the alerts whose first or newest reading is one of them."""
    with store.engine.connect() as conn:
        rows = conn.execute(READINGS.where(r.c.message_id == message_id).order_by(r.c.id)).all()
        ids = [row.id for row in rows]
        raised = conn.execute(ALERTS.where(or_(a.c.reading_id.in_(ids), a.c.last_reading_id.in_(ids)))
                              .order_by(a.c.id)).all() if ids else []
    return [reading(row) for row in rows], [alert(row) for row in raised]


def find_readings(store: SqlStore, patient_id: str | None, device_id: str | None, since: datetime | None,
                  until: datetime | None, limit: int) -> list[StoredReading]:
    """Newest observation first; ``since`` inclusive, ``until`` exclusive."""
    statement = READINGS
    if patient_id:
        statement = statement.where(r.c.patient_id == patient_id)
    if device_id:
        statement = statement.where(r.c.device_id == device_id)
    if since is not None:
        statement = statement.where(r.c.observed_at >= utc_naive(since))
    if until is not None:
        statement = statement.where(r.c.observed_at < utc_naive(until))
    with store.engine.connect() as conn:
        rows = conn.execute(statement.order_by(r.c.observed_at.desc(), r.c.id.desc()).limit(limit)).all()
    return [reading(row) for row in rows]


def find_alerts(store: SqlStore, patient_id: str | None, state: str | None, severity: str | None,
                limit: int) -> list[Alert]:
    """Most recently seen first."""
    statement = ALERTS
    for column, value in ((a.c.patient_id, patient_id), (a.c.state, state), (a.c.severity, severity)):
        if value:
            statement = statement.where(column == value)
    with store.engine.connect() as conn:
        rows = conn.execute(statement.order_by(a.c.last_seen_at.desc(), a.c.id.desc()).limit(limit)).all()
    return [alert(row) for row in rows]


def alert_by_id(store: SqlStore, alert_id: int) -> Alert:
    with store.engine.connect() as conn:
        return alert(conn.execute(ALERTS.where(a.c.id == alert_id)).one())
