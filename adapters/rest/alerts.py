"""``GET /api/v1/alerts`` (newest last_seen_at first, filtered, paged) and ``GET /api/v1/alerts/{id}``."""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy import Connection, Select, select
from sqlalchemy.engine import Row

from adapters.rest.auth import require_read_key
from adapters.rest.deps import Store
from adapters.rest.json_rows import row_json
from adapters.rest.paging import PageParams, newest_first, page_json
from adapters.rest.params import AlertId, PatientFilter
from adapters.sql_tables import alerts as a

router = APIRouter(prefix="/api/v1", tags=["alerts"], dependencies=[Depends(require_read_key)])

ALERTS = select(a.c.id, a.c.patient_id, a.c.device_id, a.c.vital, a.c.severity, a.c.kind, a.c.state,
                a.c.message, a.c.value, a.c.last_value, a.c.occurrences, a.c.first_seen_at, a.c.last_seen_at,
                a.c.reading_id, a.c.last_reading_id, a.c.created_at, a.c.updated_at, a.c.acknowledged_at,
                a.c.acknowledged_by, a.c.resolved_at, a.c.resolved_by)

State = Literal["open", "acknowledged", "resolved"]
Severity = Literal["warning", "critical"]
Kind = Literal["threshold", "trend"]


@router.get("/alerts", summary="Alerts, most recently seen first")
def list_alerts(store: Store, page: PageParams, patient_id: PatientFilter = None, state: State | None = None,
                severity: Severity | None = None, kind: Kind | None = None) -> dict[str, Any]:
    statement: Select = ALERTS
    for column, value in ((a.c.patient_id, patient_id), (a.c.state, state), (a.c.severity, severity),
                          (a.c.kind, kind)):
        if value is not None:
            statement = statement.where(column == value)
    with store.engine.connect() as conn:
        rows = list(conn.execute(newest_first(statement, a.c.last_seen_at, a.c.id, page)))
    return page_json(rows, page, "last_seen_at")


@router.get("/alerts/{alert_id}", summary="One alert")
def get_alert(store: Store, alert_id: AlertId) -> dict[str, Any]:
    with store.engine.connect() as conn:
        return row_json(alert_or_404(conn, alert_id))


def alert_or_404(conn: Connection, alert_id: int) -> Row:
    row = conn.execute(ALERTS.where(a.c.id == alert_id)).first()
    if row is None:
        raise HTTPException(404, f"there is no alert {alert_id}")
    return row
