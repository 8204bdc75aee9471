"""The alerts list: filtered by severity, state, kind, patient and time, newest seen first, 50 a page; new
alerts appear without a reload (dashboard.js fetches ``/alerts/rows`` with the same filters every few
seconds); acknowledge and resolve from the list (engine.operator_actions records who and when).

The time range keeps alerts active in it: last seen at or after ``from`` and first seen before ``to``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Select
from sqlalchemy.engine import Row

from adapters.dashboard.auth import Operating, PageError, Viewing, fragment_response, html_response, redirect
from adapters.dashboard.forms import choice, input_value, local_path, local_time, query, text
from adapters.dashboard.markup import (
    View,
    badge,
    digest,
    esc,
    filter_form,
    input_field,
    link,
    number,
    page,
    rows_html,
    select_field,
    table,
    tr,
)
from adapters.rest.alerts import ALERTS
from adapters.rest.deps import Store
from adapters.rest.paging import Page, decode_cursor, encode_cursor, newest_first
from adapters.rest.params import AlertId
from adapters.sql_store import SqlStore
from adapters.sql_tables import alerts as a
from engine.operator_actions import ActionRefused, change_alert_state

router = APIRouter()

PAGE_SIZE = 50
SEVERITIES = ("critical", "warning")
STATES = ("open", "acknowledged", "resolved")
KINDS = ("threshold", "trend")
HEADERS = ("Severity", "State", "Patient", "Vital", "Alert", "Value", "Seen", "Acknowledged", "Resolved", "Actions")


@dataclass(frozen=True)
class AlertFilters:
    severity: str | None
    state: str | None
    kind: str | None
    patient: str | None
    since: datetime | None
    until: datetime | None

    @classmethod
    def of(cls, request: Request, view: View) -> AlertFilters:
        zone = view.settings.time_zone
        return cls(choice(request, "severity", SEVERITIES), choice(request, "state", STATES),
                   choice(request, "kind", KINDS), text(request, "patient", 100),
                   local_time(request, "from", zone), local_time(request, "to", zone))

    def query(self, view: View, **more: object) -> str:
        zone = view.settings.time_zone
        return query(severity=self.severity, state=self.state, kind=self.kind, patient=self.patient,
                     **{"from": input_value(self.since, zone), "to": input_value(self.until, zone)}, **more)

    def statement(self) -> Select:
        statement: Select = ALERTS
        for column, value in ((a.c.severity, self.severity), (a.c.state, self.state), (a.c.kind, self.kind),
                              (a.c.patient_id, self.patient)):
            if value is not None:
                statement = statement.where(column == value)
        if self.since is not None:
            statement = statement.where(a.c.last_seen_at >= self.since)
        if self.until is not None:
            statement = statement.where(a.c.first_seen_at < self.until)
        return statement


@router.get("/alerts", response_class=HTMLResponse, include_in_schema=False)
def alerts_page(request: Request, viewer: Viewing, store: Store) -> HTMLResponse:
    view = View.of(request, viewer)
    filters = AlertFilters.of(request, view)
    cursor = request.query_params.get("cursor", "")
    rows, next_cursor = _page(store, filters, cursor)
    here = request.url.path + filters.query(view, cursor=cursor or None)
    live = "" if cursor else f"/alerts/rows{filters.query(view)}"
    older = (f'<p>{link("/alerts" + filters.query(view, cursor=next_cursor), "Older alerts")}</p>'
             if next_cursor else "")
    body = (_filter_form(view, filters) + '<p class="live-status" aria-live="polite"></p>' +
            table("Alerts, most recently seen first", HEADERS, [_row(view, row, here) for row in rows],
                  "No alerts match these filters.", body_id="alert-rows", live=live) + older)
    return html_response(request, viewer, page(view, "Alerts", body, "/alerts"))


@router.get("/alerts/rows", response_class=HTMLResponse, include_in_schema=False)
def alert_rows(request: Request, viewer: Viewing, store: Store) -> HTMLResponse:
    """The first page's rows alone, for the live refresh."""
    view = View.of(request, viewer)
    filters = AlertFilters.of(request, view)
    rows, _ = _page(store, filters, "")
    here = "/alerts" + filters.query(view)
    content = rows_html([_row(view, row, here) for row in rows], len(HEADERS), "No alerts match these filters.")
    return fragment_response(request, viewer, content, digest(content))


@router.post("/alerts/{alert_id}/acknowledge", include_in_schema=False)
def acknowledge(alert_id: AlertId, posted: Operating, store: Store) -> Response:
    return act(store, alert_id, "acknowledge", posted.viewer.name, local_path(posted.get("next"), "/alerts"))


@router.post("/alerts/{alert_id}/resolve", include_in_schema=False)
def resolve(alert_id: AlertId, posted: Operating, store: Store) -> Response:
    return act(store, alert_id, "resolve", posted.viewer.name, local_path(posted.get("next"), "/alerts"))


def act(store: SqlStore, alert_id: int, action: str, by: str, back: str) -> Response:
    try:
        change_alert_state(store, alert_id, action, by)
    except ActionRefused as refused:
        raise PageError(404 if refused.missing else 409, f"Alert not {action}d", str(refused)) from None
    return redirect(back)


def _page(store: SqlStore, filters: AlertFilters, cursor: str) -> tuple[list[Row], str | None]:
    try:
        after = decode_cursor(cursor) if cursor else None
    except RequestValidationError:
        after = None
    page_spec = Page(PAGE_SIZE, after)
    with store.engine.connect() as conn:
        rows = list(conn.execute(newest_first(filters.statement(), a.c.last_seen_at, a.c.id, page_spec)))
    shown = rows[:PAGE_SIZE]
    more = len(rows) > PAGE_SIZE
    return shown, encode_cursor(shown[-1].last_seen_at, shown[-1].id) if more else None


def _filter_form(view: View, f: AlertFilters) -> str:
    zone = view.settings.time_zone
    fields = (select_field("severity", "Severity", SEVERITIES, f.severity) +
              select_field("state", "State", STATES, f.state) + select_field("kind", "Kind", KINDS, f.kind) +
              input_field("patient", "Patient", f.patient) +
              input_field("from", "Seen from", input_value(f.since, zone), "datetime-local", 18) +
              input_field("to", "to", input_value(f.until, zone), "datetime-local", 18))
    return filter_form("/alerts", fields)


def _row(view: View, row: Row, back: str) -> str:
    who = f"alert {row.id} ({row.vital}, patient {row.patient_id})"
    seen = (f"{view.when(row.last_seen_at)}" +
            (f" <small>×{row.occurrences} since {view.when(row.first_seen_at)}</small>" if row.occurrences > 1
             else ""))
    value = number(row.last_value) + (f" <small>(first {number(row.value)})</small>"
                                      if row.last_value != row.value else "")
    cells = [badge(row.severity, row.severity), badge(row.state, row.state),
             link(f"/alerts?patient={row.patient_id}", row.patient_id, f"Alerts of patient {row.patient_id}"),
             esc(row.vital) + (" <small>(trend)</small>" if row.kind == "trend" else ""), esc(row.message), value,
             seen, _who_when(view, row.acknowledged_by, row.acknowledged_at),
             _who_when(view, row.resolved_by, row.resolved_at), action_buttons(view, row, who, back)]
    return tr(cells, f"alert-{row.id}", f"severity-{row.severity}")


def _who_when(view: View, by: str | None, at: datetime | None) -> str:
    return f"{esc(by)}<br><small>{view.when(at)}</small>" if by else ""


def action_buttons(view: View, row: Row, who: str, back: str, details: bool = True) -> str:
    """Details (in the list), Acknowledge (open alerts) and Resolve (open or acknowledged), for operators."""
    parts = [link(f"/alerts/{row.id}", "Details", f"Details of {who}")] if details else []
    if view.viewer.may("operator"):
        if row.state == "open":
            parts.append(view.button(f"/alerts/{row.id}/acknowledge", "Acknowledge", back=back,
                                     element_id=f"ack-{row.id}", aria_label=f"Acknowledge {who}"))
        if row.state in ("open", "acknowledged"):
            parts.append(view.button(f"/alerts/{row.id}/resolve", "Resolve", back=back, danger=True,
                                     confirm=f"Resolve {who}? Resolving is a clinical decision.",
                                     element_id=f"resolve-{row.id}", aria_label=f"Resolve {who}"))
    return '<div class="actions">' + " ".join(parts) + "</div>"
