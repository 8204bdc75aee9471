"""Incidents over REST: ``GET /api/v1/incidents`` (newest opened first, filtered by state and kind, paged),
``GET /api/v1/incidents/{id}``, and ``POST .../acknowledge`` and ``.../resolve`` with ``{"by": "..."}``.

engine.incidents does the state change (one guarded transaction); this answers 200 with the incident, 404
for an unknown one, 409 when its state does not allow the action. ``details`` is served as the JSON object
it was stored as.
"""
from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path
from sqlalchemy import Select, select
from sqlalchemy.engine import Row

from adapters.rest.alert_actions import Actor
from adapters.rest.auth import require_read_key, require_write_key
from adapters.rest.deps import Store
from adapters.rest.json_rows import row_json
from adapters.rest.paging import PageParams, newest_first, page_json
from adapters.sql_store import SqlStore
from adapters.sql_tables import incidents as i
from engine.incidents import change_incident_state
from engine.operator_actions import ActionRefused

router = APIRouter(prefix="/api/v1", tags=["incidents"], dependencies=[Depends(require_read_key)])

IncidentId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the incident's id")]
State = Literal["open", "acknowledged", "resolved"]
Kind = Literal["device_offline", "destination_down", "dead_letters", "reconciliation_mismatch"]

INCIDENTS = select(i.c.id, i.c.kind, i.c.subject, i.c.state, i.c.severity, i.c.summary, i.c.details, i.c.opened_at,
                   i.c.last_seen_at, i.c.occurrences, i.c.acknowledged_at, i.c.acknowledged_by, i.c.resolved_at,
                   i.c.resolved_by)


@router.get("/incidents", summary="Incidents, most recently opened first")
def list_incidents(store: Store, page: PageParams, state: State | None = None,
                   kind: Kind | None = None) -> dict[str, Any]:
    statement: Select = INCIDENTS
    for column, value in ((i.c.state, state), (i.c.kind, kind)):
        if value is not None:
            statement = statement.where(column == value)
    with store.engine.connect() as conn:
        rows = list(conn.execute(newest_first(statement, i.c.opened_at, i.c.id, page)))
    listed = page_json(rows, page, "opened_at")
    listed["items"] = [_with_details(item) for item in listed["items"]]
    return listed


@router.get("/incidents/{incident_id}", summary="One incident")
def get_incident(store: Store, incident_id: IncidentId) -> dict[str, Any]:
    with store.engine.connect() as conn:
        row = conn.execute(INCIDENTS.where(i.c.id == incident_id)).first()
    if row is None:
        raise HTTPException(404, f"there is no incident {incident_id}")
    return incident_json(row)


@router.post("/incidents/{incident_id}/acknowledge", summary="Acknowledge an open incident",
             dependencies=[Depends(require_write_key)])
def acknowledge(store: Store, incident_id: IncidentId, actor: Actor) -> dict[str, Any]:
    return _change_state(store, incident_id, "acknowledge", actor.by)


@router.post("/incidents/{incident_id}/resolve", summary="Resolve an open or acknowledged incident",
             dependencies=[Depends(require_write_key)])
def resolve(store: Store, incident_id: IncidentId, actor: Actor) -> dict[str, Any]:
    return _change_state(store, incident_id, "resolve", actor.by)


def _change_state(store: SqlStore, incident_id: int, action: str, by: str) -> dict[str, Any]:
    try:
        return incident_json(change_incident_state(store, incident_id, action, by))
    except ActionRefused as refused:
        raise HTTPException(404 if refused.missing else 409, str(refused)) from None


def incident_json(row: Row) -> dict[str, Any]:
    return _with_details(row_json(row))


def _with_details(item: dict[str, Any]) -> dict[str, Any]:
    if item.get("details") is not None:
        item["details"] = json.loads(item["details"])
    return item
