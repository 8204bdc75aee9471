"""Acknowledge and resolve an alert: who and when, in one short transaction each.

The UPDATE is guarded by the state it leaves (``WHERE state IN (...)``), so of two nurses racing, one
changes the row and the other finds it already changed: 200 for the first, 409 for the second.
Acknowledge: open -> acknowledged. Resolve: open or acknowledged -> resolved (resolution is a clinical
act; an alert may be resolved without an acknowledgement first).
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import update

from adapters.rest.alerts import alert_or_404
from adapters.rest.auth import require_read_key, require_write_key
from adapters.rest.deps import Store
from adapters.rest.json_rows import now, row_json
from adapters.rest.params import AlertId
from adapters.sql_store import SqlStore
from adapters.sql_tables import alerts as a

router = APIRouter(prefix="/api/v1", tags=["alerts"],
                   dependencies=[Depends(require_read_key), Depends(require_write_key)])

# action -> (states it may start from, the state it leaves, the column prefix recording who and when)
ACTIONS = {"acknowledge": (("open",), "acknowledged", "acknowledged"),
           "resolve": (("open", "acknowledged"), "resolved", "resolved")}


class Actor(BaseModel):
    """Who acts: a nurse's name or staff id, as the alert will show it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    by: str = Field(min_length=1, max_length=100, examples=["nurse.jones"])


@router.post("/alerts/{alert_id}/acknowledge", summary="Acknowledge an open alert")
def acknowledge(store: Store, alert_id: AlertId, actor: Actor) -> dict[str, Any]:
    return change_state(store, alert_id, "acknowledge", actor.by)


@router.post("/alerts/{alert_id}/resolve", summary="Resolve an open or acknowledged alert")
def resolve(store: Store, alert_id: AlertId, actor: Actor) -> dict[str, Any]:
    return change_state(store, alert_id, "resolve", actor.by)


def change_state(store: SqlStore, alert_id: int, action: str, by: str) -> dict[str, Any]:
    starts, leaves, prefix = ACTIONS[action]
    moment = now()
    with store.transaction() as tx:
        changed = tx.conn.execute(
            update(a).where(a.c.id == alert_id, a.c.state.in_(starts))
            .values({"state": leaves, "updated_at": moment, f"{prefix}_at": moment, f"{prefix}_by": by})).rowcount
        row = alert_or_404(tx.conn, alert_id)
    if changed != 1:
        already = "already " if row.state == leaves else ""
        raise HTTPException(409, f"alert {alert_id} is {already}{row.state}: it cannot be {leaves} now")
    return row_json(row)
