"""The outbox over REST: what each destination still has to send, what became of it, and the operators' levers.

Reads: ``GET /api/v1/outbox`` (rows newest first, filtered, paged, never the payload: it holds patient data
and is big), ``GET /api/v1/outbox/{id}`` (``{"row", "payload", "attempts"}``: one row, its payload parsed or
null once retention emptied it (``payload_pruned_at``), its attempts oldest first) and
``GET /api/v1/destinations`` (per destination: paused or not, rows by state, the age of the oldest PENDING
row, the last send). Writes: ``POST /api/v1/outbox/{id}/retry`` (one dead
letter), and per destination ``.../pause`` and ``.../resume`` with ``{"by": "..."}`` and ``.../retry-dead``.

engine.outbox_actions does each change (one short transaction); this answers 404 for an unknown row or
destination and 409 when a row is not a dead letter. Destinations are those the engine was configured with
(``app.state.destinations``: dicts with name, kind and route) and any name found in the outbox or
destinations tables (a destination removed from the routes still shows its rows).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from sqlalchemy import Connection, Select, func, select
from sqlalchemy.engine import Row

from adapters.rest.alert_actions import Actor
from adapters.rest.auth import require_read_key, require_write_key
from adapters.rest.deps import Store
from adapters.rest.json_rows import iso, now, row_json
from adapters.rest.paging import PageParams, newest_first, page_json
from adapters.rest.params import PatientFilter
from adapters.sql_store import SqlStore
from adapters.sql_tables import destinations as d
from adapters.sql_tables import outbox as o
from adapters.sql_tables import outbox_attempts as t
from engine import outbox_actions
from engine.operator_actions import ActionRefused

router = APIRouter(prefix="/api/v1", tags=["outbox"], dependencies=[Depends(require_read_key)])

OUTBOX = select(o.c.id, o.c.destination, o.c.route, o.c.kind, o.c.idempotency_key, o.c.message_id, o.c.alert_id,
                o.c.patient_id, o.c.state, o.c.attempts, o.c.next_attempt_at, o.c.claimed_by, o.c.claimed_until,
                o.c.remote_id, o.c.last_error, o.c.created_at, o.c.sent_at, o.c.payload_pruned_at)
ATTEMPTS = select(t.c.id, t.c.attempt, t.c.node, t.c.started_at, t.c.duration_ms, t.c.outcome, t.c.remote_id,
                  t.c.error)
# Per destination and state: rows, the oldest row's creation, the newest send, the route the rows came through.
BY_STATE = (select(o.c.destination, o.c.state, func.count().label("row_count"),
                   func.min(o.c.created_at).label("oldest"), func.max(o.c.sent_at).label("last_sent_at"),
                   func.max(o.c.route).label("route"))
            .group_by(o.c.destination, o.c.state))

State = Literal["PENDING", "SENDING", "SENT", "DEAD", "SUPPRESSED"]
Kind = Literal["observations", "alert", "alert_resolved"]
OutboxId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the outbox row's id")]
DestinationName = Annotated[str, Path(min_length=1, max_length=100, description="the destination's name")]
DestinationFilter = Annotated[str | None, Query(min_length=1, max_length=100)]
MessageFilter = Annotated[int | None, Query(ge=1, le=2**63 - 1, description="rows queued for this message")]


@router.get("/outbox", summary="Outbox rows, newest first (without their payload)")
def list_outbox(store: Store, page: PageParams, state: State | None = None, destination: DestinationFilter = None,
                kind: Kind | None = None, patient_id: PatientFilter = None,
                message_id: MessageFilter = None) -> dict[str, Any]:
    statement: Select = OUTBOX
    for column, value in ((o.c.state, state), (o.c.destination, destination), (o.c.kind, kind),
                          (o.c.patient_id, patient_id), (o.c.message_id, message_id)):
        if value is not None:
            statement = statement.where(column == value)
    with store.engine.connect() as conn:
        rows = list(conn.execute(newest_first(statement, o.c.created_at, o.c.id, page)))
    return page_json(rows, page, "created_at")


@router.get("/outbox/{outbox_id}", summary="One outbox row with its payload and its attempts")
def get_outbox_row(store: Store, outbox_id: OutboxId) -> dict[str, Any]:
    with store.engine.connect() as conn:
        row = conn.execute(OUTBOX.add_columns(o.c.payload).where(o.c.id == outbox_id)).first()
        if row is None:
            raise HTTPException(404, f"there is no outbox row {outbox_id}")
        attempts = conn.execute(ATTEMPTS.where(t.c.outbox_id == outbox_id).order_by(t.c.id)).all()
    summary = row_json(row)
    payload = summary.pop("payload")
    return {"row": summary, "payload": None if row.payload_pruned_at else json.loads(payload),
            "attempts": [row_json(attempt) for attempt in attempts]}


@router.post("/outbox/{outbox_id}/retry", summary="Send a dead letter again",
             dependencies=[Depends(require_write_key)])
def retry_dead_letter(store: Store, outbox_id: OutboxId) -> dict[str, Any]:
    try:
        row = outbox_actions.retry(store, outbox_id)
    except ActionRefused as refused:
        raise HTTPException(404 if refused.missing else 409, str(refused)) from None
    item = row_json(row)
    del item["payload"]
    return item


@router.get("/destinations", summary="Destinations: paused or not, rows by state, oldest pending, last send")
def list_destinations(store: Store, request: Request) -> dict[str, Any]:
    with store.engine.connect() as conn:
        return {"items": destination_states(conn, configured_destinations(request))}


@router.post("/destinations/{name}/pause", summary="Pause a destination: its rows wait in the queue",
             dependencies=[Depends(require_write_key)])
def pause_destination(store: Store, request: Request, name: DestinationName, actor: Actor) -> dict[str, Any]:
    return _switch(store, request, name, outbox_actions.pause, actor.by)


@router.post("/destinations/{name}/resume", summary="Resume a paused destination",
             dependencies=[Depends(require_write_key)])
def resume_destination(store: Store, request: Request, name: DestinationName, actor: Actor) -> dict[str, Any]:
    return _switch(store, request, name, outbox_actions.resume, actor.by)


@router.post("/destinations/{name}/retry-dead", summary="Send every dead letter of a destination again",
             dependencies=[Depends(require_write_key)])
def retry_dead_letters(store: Store, request: Request, name: DestinationName) -> dict[str, int]:
    _known_or_404(store, request, name)
    return {"retried": outbox_actions.retry_dead(store, name)}


def configured_destinations(request: Request) -> dict[str, dict[str, Any]]:
    """The destinations the engine runs, by name (create_app sets ``app.state.destinations``)."""
    return {item["name"]: item for item in getattr(request.app.state, "destinations", ())}


def destination_states(conn: Connection, configured: dict[str, dict[str, Any]],
                       only: str | None = None) -> list[dict[str, Any]]:
    """Every destination (or ``only`` that one) known from the configuration or the tables, sorted by name.
    One GROUP BY over the outbox gives the counts, the oldest PENDING row and the last send."""
    counted, flags = BY_STATE, select(d)
    if only is not None:
        counted, flags = counted.where(o.c.destination == only), flags.where(d.c.name == only)
        configured = {name: item for name, item in configured.items() if name == only}
    groups: dict[str, list[Row]] = {}
    for group in conn.execute(counted):
        groups.setdefault(group.destination, []).append(group)
    switches = {row.name: row for row in conn.execute(flags)}
    moment = now()
    return [_destination(name, configured.get(name), groups.get(name, []), switches.get(name), moment)
            for name in sorted(set(configured) | set(groups) | set(switches))]


def _destination(name: str, config: dict[str, Any] | None, groups: list[Row], switch: Row | None,
                 moment: datetime) -> dict[str, Any]:
    counts: dict[str, int] = dict.fromkeys(get_args(State), 0)
    oldest_pending: datetime | None = None
    sends = [group.last_sent_at for group in groups if group.last_sent_at is not None]
    route = None
    for group in groups:
        counts[group.state] = int(group.row_count)
        route = group.route
        if group.state == "PENDING":
            oldest_pending = group.oldest
    return {"name": name, "kind": config.get("kind") if config else None,
            "route": config.get("route") if config else route, "configured": config is not None,
            "paused": bool(switch.paused) if switch else False,
            "changed_by": switch.changed_by if switch else None,
            "changed_at": iso(switch.changed_at) if switch else None,
            "counts": counts,
            "oldest_pending_age_seconds": _age(oldest_pending, moment),
            "last_sent_at": iso(max(sends)) if sends else None}


def _age(since: datetime | None, moment: datetime) -> float | None:
    return None if since is None else round(max((moment - since).total_seconds(), 0.0), 3)


def _switch(store: SqlStore, request: Request, name: str, action: Callable[[SqlStore, str, str], None],
            by: str) -> dict[str, Any]:
    """Pause or resume, recording who; the destination as it is now."""
    _known_or_404(store, request, name)
    action(store, name, by)
    with store.engine.connect() as conn:
        [item] = destination_states(conn, configured_destinations(request), only=name)
    return item


def _known_or_404(store: SqlStore, request: Request, name: str) -> None:
    """Actions are taken on destinations the engine runs or whose rows are in the tables, never on a typo."""
    if name in configured_destinations(request):
        return
    with store.engine.connect() as conn:
        queued = conn.execute(select(o.c.id).where(o.c.destination == name).limit(1)).first()
        switched = conn.execute(select(d.c.name).where(d.c.name == name)).first()
    if queued is None and switched is None:
        raise HTTPException(404, f"there is no destination {name}: it is neither configured nor in the outbox")
