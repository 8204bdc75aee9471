"""One alert, drilled down: the patient's vitals over the last hours as a chart with the alert bands shaded,
the readings around the alert, its history (raised, repeated, acknowledged, resolved, who was notified)
and the message it came from. Six bounded queries: the alert, the charted readings (``ix_readings_patient_time``,
at most MAX_POINTS), the bands, the readings around it, its outbox rows, its messages.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Connection, and_, or_, select
from sqlalchemy.engine import Row

from adapters.dashboard.alerts import action_buttons
from adapters.dashboard.auth import PageError, Viewing, html_response
from adapters.dashboard.forms import whole
from adapters.dashboard.markup import View, badge, definition_list, esc, link, number, page, table, tr
from adapters.dashboard.svg import Bands, Series, line_chart
from adapters.rest.alerts import alert_or_404
from adapters.rest.deps import Store
from adapters.rest.messages import MESSAGES
from adapters.rest.outbox import OUTBOX
from adapters.rest.params import AlertId
from adapters.rest.readings import READINGS
from adapters.rest.thresholds import THRESHOLDS
from adapters.sql_tables import alert_thresholds as th
from adapters.sql_tables import device_readings as r
from adapters.sql_tables import messages as m
from adapters.sql_tables import outbox as o
from transforms.vitals import VITALS

router = APIRouter()

HOURS = (1, 2, 6, 12, 24)
MAX_POINTS = 4000
AROUND = timedelta(minutes=10)
AROUND_ROWS = 200


@router.get("/alerts/{alert_id}", response_class=HTMLResponse, include_in_schema=False)
def alert_page(request: Request, alert_id: AlertId, viewer: Viewing, store: Store) -> HTMLResponse:
    view = View.of(request, viewer)
    hours = whole(request, "hours", 2, 1, 24)
    with store.engine.connect() as conn:
        try:
            alert = alert_or_404(conn, alert_id)
        except HTTPException:
            raise PageError(404, "No such alert", f"There is no alert {alert_id}.") from None
        vitals = [v for v in alert.vital.split(",") if v]
        end = min(max(view.now, alert.last_seen_at + timedelta(minutes=5)), alert.last_seen_at + timedelta(hours=1))
        start = end - timedelta(hours=hours)
        charted = conn.execute(READINGS.where(r.c.patient_id == alert.patient_id, r.c.vital.in_(vitals),
                                              r.c.observed_at >= start, r.c.observed_at <= end)
                               .order_by(r.c.observed_at, r.c.id).limit(MAX_POINTS)).all()
        bands = _bands(conn, vitals, alert.patient_id, alert.device_id)
        around = conn.execute(READINGS.where(r.c.patient_id == alert.patient_id,
                                             r.c.observed_at >= alert.first_seen_at - AROUND,
                                             r.c.observed_at <= alert.last_seen_at + AROUND)
                              .order_by(r.c.observed_at, r.c.id).limit(AROUND_ROWS)).all()
        notices = conn.execute(OUTBOX.where(o.c.alert_id == alert_id).order_by(o.c.id)).all()
        sources = conn.execute(MESSAGES.where(m.c.id.in_(
            select(r.c.message_id).where(r.c.id.in_((alert.reading_id, alert.last_reading_id)))))
            .order_by(m.c.id)).all()
    here = f"/alerts/{alert_id}?hours={hours}"
    hour_links = " ".join(link(f"/alerts/{alert_id}?hours={h}", f"{h} h", f"Chart the last {h} hours")
                          for h in HOURS)
    charts = "".join(_chart(view, alert, vital, charted, bands.get(vital), start, end) for vital in vitals)
    body = (_summary(view, alert, here) +
            f'<h2>Vitals of patient {esc(alert.patient_id)}</h2><p class="controls">Chart span: {hour_links}</p>'
            f'{charts}<h2>Readings around the alert</h2>{_around(view, alert, around)}'
            f'<h2>History</h2>{_history(view, alert, notices)}'
            f'<h2>Message it came from</h2>{_sources(view, sources)}')
    title = f"Alert {alert_id}: {alert.severity} {alert.vital}, patient {alert.patient_id}"
    return html_response(request, viewer, page(view, title, body, "/alerts"))


def _bands(conn: Connection, vitals: list[str], patient_id: str, device_id: str) -> dict[str, Bands]:
    """The band each vital's alerts are evaluated with: the device's, else the patient's, else the global one."""
    rows = conn.execute(THRESHOLDS.where(th.c.vital.in_(vitals), or_(
        and_(th.c.patient_id.is_(None), th.c.device_id.is_(None)), th.c.patient_id == patient_id,
        th.c.device_id == device_id))).all()
    chosen: dict[str, Row] = {}
    for row in sorted(rows, key=lambda b: (b.device_id is not None, b.patient_id is not None)):
        chosen[row.vital] = row  # the most specific comes last and wins
    return {vital: Bands(row.critical_low, row.warning_low, row.warning_high, row.critical_high)
            for vital, row in chosen.items()}


def _chart(view: View, alert: Row, vital: str, readings: list[Row], bands: Bands | None, start: datetime,
           end: datetime) -> str:
    points = [(row.observed_at, row.value) for row in readings if row.vital == vital]
    unit = VITALS[vital].unit if vital in VITALS else ""
    return line_chart(f"{vital} of patient {alert.patient_id}", [Series(vital, points)], start, end,
                      view.settings.time_zone, bands=bands, unit=unit,
                      markers=[(alert.first_seen_at, "alert raised")])


def _summary(view: View, alert: Row, back: str) -> str:
    facts = [("Severity", badge(alert.severity, alert.severity)), ("State", badge(alert.state, alert.state)),
             ("Kind", esc(alert.kind)), ("What", esc(alert.message)),
             ("Patient", link(f"/alerts?patient={alert.patient_id}", alert.patient_id)),
             ("Device", esc(alert.device_id)),
             ("Value", f"{number(alert.value)} first, {number(alert.last_value)} last"),
             ("Seen", f"{alert.occurrences} time(s), {view.when(alert.first_seen_at)} to "
                      f"{view.when(alert.last_seen_at)}")]
    who = f"alert {alert.id} ({alert.vital}, patient {alert.patient_id})"
    return definition_list(facts) + action_buttons(view, alert, who, back, details=False)


def _around(view: View, alert: Row, readings: list[Row]) -> str:
    raising = {alert.reading_id, alert.last_reading_id}
    rows = [tr([view.when(row.observed_at), esc(row.vital), f"{esc(row.comparator)}{number(row.value)}",
                esc(row.unit), esc(row.device_id), link(f"/messages/{row.message_id}", f"message {row.message_id}"),
                "raised this alert" if row.id == alert.reading_id else
                "latest for this alert" if row.id in raising else ""],
               css="highlight" if row.id in raising else "")
            for row in readings]
    caption = f"Readings of patient {alert.patient_id} from 10 minutes before to 10 minutes after the alert"
    return table(caption, ("Observed", "Vital", "Value", "Unit", "Device", "Message", "Note"), rows,
                 "No readings in this span.")


def _history(view: View, alert: Row, notices: list[Row]) -> str:
    """(time, HTML) events in time order: the alert's own, then what each destination was queued."""
    events = [(alert.first_seen_at, f"raised at {number(alert.value)}")]
    if alert.occurrences > 1:
        events.append((alert.last_seen_at, f"seen {alert.occurrences} times, last at {number(alert.last_value)}"))
    if alert.acknowledged_at is not None:
        events.append((alert.acknowledged_at, f"acknowledged by {esc(alert.acknowledged_by)}"))
    if alert.resolved_at is not None:
        events.append((alert.resolved_at, f"resolved by {esc(alert.resolved_by)}"))
    for notice in notices:
        outcome = {"SENT": f"sent {view.when(notice.sent_at)}", "DEAD": f"dead letter: {esc(notice.last_error)}",
                   "SUPPRESSED": "suppressed: a repeat within the window"}.get(notice.state, esc(notice.state.lower()))
        events.append((notice.created_at, f"{esc(notice.kind.replace('_', ' '))} queued for "
                                          f"{esc(notice.destination)} ({outcome})"))
    rows = [[view.when(moment), what] for moment, what in sorted(events, key=lambda event: event[0])]
    return table(f"History of alert {alert.id}", ("When", "What"), rows, "Nothing recorded.")


def _sources(view: View, sources: list[Row]) -> str:
    rows = [[link(f"/messages/{row.id}", str(row.id), f"Message {row.id}"), esc(row.control_id), esc(row.route),
             esc(row.status), view.when(row.received_at)] for row in sources]
    return table("Messages with the readings of this alert", ("Message", "Control id", "Route", "Status",
                                                               "Received"), rows, "The message is not known.")
