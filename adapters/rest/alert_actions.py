"""Acknowledge and resolve an alert over REST: engine.operator_actions does it (one guarded transaction);
this answers 200 with the alert, 404 for an unknown one, 409 when its state does not allow the action
(of two nurses racing, the second)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from adapters.rest.auth import require_read_key, require_write_key
from adapters.rest.deps import Store
from adapters.rest.json_rows import row_json
from adapters.rest.params import AlertId
from adapters.sql_store import SqlStore
from engine.operator_actions import ActionRefused, change_alert_state

router = APIRouter(prefix="/api/v1", tags=["alerts"],
                   dependencies=[Depends(require_read_key), Depends(require_write_key)])


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
    try:
        return row_json(change_alert_state(store, alert_id, action, by))
    except ActionRefused as refused:
        raise HTTPException(404 if refused.missing else 409, str(refused)) from None
