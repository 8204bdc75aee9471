"""Incidents and the outbox: open incidents (acknowledge, resolve), destinations (pause, resume, retry their
dead letters) and the dead letters themselves (retry one). The engine's actions do every change
(engine.incidents, engine.outbox_actions); the REST module's queries and checks are reused.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.engine import Row

from adapters.dashboard.auth import Operating, PageError, Viewing, html_response, redirect
from adapters.dashboard.forms import local_path
from adapters.dashboard.health import duration
from adapters.dashboard.markup import View, badge, esc, link, page, stored, table, tr
from adapters.rest.deps import Store
from adapters.rest.incidents import INCIDENTS, IncidentId
from adapters.rest.outbox import (
    OUTBOX,
    DestinationName,
    OutboxId,
    _known_or_404,
    configured_destinations,
    destination_states,
)
from adapters.sql_store import SqlStore
from adapters.sql_tables import incidents as i
from adapters.sql_tables import outbox as o
from engine import outbox_actions
from engine.incidents import change_incident_state
from engine.operator_actions import ActionRefused

router = APIRouter()

LIMIT = 100
HERE = "/operations"


@router.get("/operations", response_class=HTMLResponse, include_in_schema=False)
def operations_page(request: Request, viewer: Viewing, store: Store) -> HTMLResponse:
    view = View.of(request, viewer)
    with store.engine.connect() as conn:
        incidents = conn.execute(INCIDENTS.where(i.c.state.in_(("open", "acknowledged")))
                                 .order_by(i.c.opened_at.desc(), i.c.id.desc()).limit(LIMIT)).all()
        destinations = destination_states(conn, configured_destinations(request))
        dead = conn.execute(OUTBOX.where(o.c.state == "DEAD").order_by(o.c.created_at.desc(), o.c.id.desc())
                            .limit(LIMIT)).all()
    body = (f'<h2 id="incidents">Open incidents</h2>{_incidents(view, incidents)}'
            f'<h2 id="destinations">Destinations</h2>{_destinations(view, destinations)}'
            f'<h2 id="dead-letters">Dead letters</h2>{_dead_letters(view, dead)}')
    return html_response(request, viewer, page(view, "Incidents & outbox", body, HERE))


@router.post("/incidents/{incident_id}/{action}", include_in_schema=False)
def incident_action(incident_id: IncidentId, action: str, posted: Operating, store: Store) -> Response:
    if action not in ("acknowledge", "resolve"):
        raise PageError(404, "No such action", f"Incidents can be acknowledged or resolved, not {action!r}.")
    return _done(lambda: change_incident_state(store, incident_id, action, posted.viewer.name),
                 f"Incident not {action}d", posted.get("next"), "#incidents")


@router.post("/outbox/{outbox_id}/retry", include_in_schema=False)
def retry_one(outbox_id: OutboxId, posted: Operating, store: Store) -> Response:
    return _done(lambda: outbox_actions.retry(store, outbox_id), "Not sent again", posted.get("next"), "#dead-letters")


@router.post("/destinations/{name}/{action}", include_in_schema=False)
def destination_action(request: Request, name: DestinationName, action: str, posted: Operating,
                       store: Store) -> Response:
    actions: dict[str, Callable[[], object]] = {
        "pause": lambda: outbox_actions.pause(store, name, posted.viewer.name),
        "resume": lambda: outbox_actions.resume(store, name, posted.viewer.name),
        "retry-dead": lambda: outbox_actions.retry_dead(store, name)}
    if action not in actions:
        raise PageError(404, "No such action", f"Destinations can be paused, resumed or retried, not {action!r}.")
    _known(store, request, name)
    return _done(actions[action], "Destination unchanged", posted.get("next"), "#destinations")


def _known(store: SqlStore, request: Request, name: str) -> None:
    try:
        _known_or_404(store, request, name)
    except HTTPException as missing:
        raise PageError(404, "No such destination", str(missing.detail)) from None


def _done(action: Callable[[], object], title: str, back: str, anchor: str) -> Response:
    try:
        action()
    except ActionRefused as refused:
        raise PageError(404 if refused.missing else 409, title, str(refused)) from None
    return redirect(local_path(back, HERE + anchor))


def _incidents(view: View, incidents: list[Row]) -> str:
    rows = []
    for row in incidents:
        actions = []
        if view.viewer.may("operator"):
            if row.state == "open":
                actions.append(view.button(f"/incidents/{row.id}/acknowledge", "Acknowledge", back=HERE + "#incidents",
                                           aria_label=f"Acknowledge incident {row.id}"))
            actions.append(view.button(f"/incidents/{row.id}/resolve", "Resolve", back=HERE + "#incidents",
                                       danger=True, confirm=f"Resolve incident {row.id} ({row.kind}, {row.subject})?",
                                       aria_label=f"Resolve incident {row.id}"))
        acknowledged = f"{esc(row.acknowledged_by)}<br><small>{view.when(row.acknowledged_at)}</small>" \
            if row.acknowledged_by else ""
        rows.append(tr([badge(row.severity, row.severity), esc(row.kind.replace("_", " ")), esc(row.subject),
                        esc(row.summary), badge(row.state, row.state), view.when(row.opened_at),
                        f"{view.when(row.last_seen_at)} <small>×{row.occurrences}</small>", acknowledged,
                        '<div class="actions">' + " ".join(actions) + "</div>"], f"incident-{row.id}"))
    return table("Incidents open or acknowledged, newest first", ("Severity", "Kind", "Subject", "Summary", "State",
                                                                 "Opened", "Last seen", "Acknowledged", "Actions"),
                 rows, "No open incidents.")


def _destinations(view: View, items: list[dict[str, Any]]) -> str:
    rows = []
    for item in items:
        name = str(item["name"])
        counts: dict[str, int] = item["counts"]
        paused = bool(item["paused"])
        state = (badge("paused", "paused") + f"<br><small>by {esc(item['changed_by'])} "
                 f"{view.when(stored(item['changed_at']))}</small>") if paused else badge("active", "active")
        age = item["oldest_pending_age_seconds"]
        actions = []
        if view.viewer.may("operator"):
            back = HERE + "#destinations"
            actions.append(view.button(f"/destinations/{name}/resume", "Resume", back=back,
                                       aria_label=f"Resume {name}") if paused else
                           view.button(f"/destinations/{name}/pause", "Pause", back=back, aria_label=f"Pause {name}",
                                       confirm=f"Pause {name}? Its records wait in the queue until resumed."))
            if counts.get("DEAD"):
                actions.append(view.button(f"/destinations/{name}/retry-dead", "Retry dead letters", back=back,
                                           confirm=f"Send all {counts['DEAD']} dead letters of {name} again?",
                                           aria_label=f"Retry the dead letters of {name}"))
        rows.append(tr([esc(name), esc(item["kind"] or "not configured"), esc(item["route"]), state,
                        *(esc(counts.get(key, 0)) for key in ("PENDING", "SENDING", "DEAD", "SENT", "SUPPRESSED")),
                        esc(duration(age)) if age is not None else "", view.when(stored(item["last_sent_at"])),
                        '<div class="actions">' + " ".join(actions) + "</div>"], f"destination-{name}"))
    return table("Outbox destinations", ("Name", "Kind", "Route", "State", "Pending", "Sending", "Dead", "Sent",
                                         "Suppressed", "Oldest pending", "Last sent", "Actions"),
                 rows, "No destinations are configured and the outbox is empty.")


def _dead_letters(view: View, rows: list[Row]) -> str:
    lines = []
    for row in rows:
        retry = view.button(f"/outbox/{row.id}/retry", "Retry", back=HERE + "#dead-letters",
                            aria_label=f"Retry dead letter {row.id}") if view.viewer.may("operator") else ""
        source = link(f"/messages/{row.message_id}", f"message {row.message_id}") if row.message_id else ""
        if row.alert_id:
            source += " " + link(f"/alerts/{row.alert_id}", f"alert {row.alert_id}")
        lines.append(tr([esc(row.id), esc(row.destination), esc(row.kind), esc(row.patient_id), source,
                         esc(row.attempts), esc(row.last_error), view.when(row.created_at), retry],
                        f"dead-{row.id}"))
    return table(f"Dead letters, newest first (at most {LIMIT})", ("Row", "Destination", "Kind", "Patient",
                                                                   "From", "Attempts", "Last error", "Queued",
                                                                   "Actions"), lines, "No dead letters.")
