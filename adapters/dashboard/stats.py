"""Statistics for a chosen time range (default the last 24 hours): alerts by severity and kind, open /
acknowledged / resolved, time to acknowledge (median, p90), the change against the period before, the top
patients and devices by alerts, and readings per minute per route (adapters/dashboard/stats_queries.py).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from adapters.dashboard.auth import Viewing, html_response
from adapters.dashboard.forms import input_value, query, time_range
from adapters.dashboard.health import duration
from adapters.dashboard.markup import View, esc, filter_form, input_field, link, page, table
from adapters.dashboard.stats_queries import Period, statistics
from adapters.dashboard.svg import Series, bar_chart, line_chart
from adapters.rest.deps import Store

router = APIRouter()

DEFAULT_RANGE = timedelta(hours=24)
MAX_RANGE = timedelta(days=31)
QUICK = (("last hour", timedelta(hours=1)), ("last 8 hours", timedelta(hours=8)),
         ("last 24 hours", timedelta(hours=24)), ("last 7 days", timedelta(days=7)))
SEVERITY_KINDS = (("critical", "threshold"), ("critical", "trend"), ("warning", "threshold"))


@router.get("/stats", response_class=HTMLResponse, include_in_schema=False)
def stats_page(request: Request, viewer: Viewing, store: Store) -> HTMLResponse:
    view = View.of(request, viewer)
    zone = view.settings.time_zone
    since, until = time_range(request, zone, view.now, DEFAULT_RANGE)
    since = max(since, until - MAX_RANGE)
    with store.engine.connect() as conn:
        found = statistics(conn, store.dialect, since, until)
    quick = " · ".join(link("/stats" + query(**{"from": input_value(view.now - span, zone)}), label)
                       for label, span in QUICK)
    fields = (input_field("from", "From", input_value(since, zone), "datetime-local", 18) +
              input_field("to", "to", input_value(until, zone), "datetime-local", 18))
    now, before = found.current, found.previous
    body = (filter_form("/stats", fields, "Time range") + f'<p class="controls">{quick}. Compared with the '
            f'{esc(duration((until - since).total_seconds()))} before {view.when(since)}.</p>'
            f'<h2>Alerts</h2>{_summary(now, before)}'
            f'<div class="columns"><section><h3>By severity and kind</h3>{_by_kind(now, before)}</section>'
            f'<section><h3>Top patients by alerts</h3>'
            f'{bar_chart("Top patients by alerts", found.top_patients)}{_top_links(found.top_patients)}</section>'
            f'<section><h3>Top devices by alerts</h3>{bar_chart("Top devices by alerts", found.top_devices)}'
            f'</section></div>'
            f'<h2>Readings per minute per route</h2>'
            f'{_rates(view, found.readings_per_minute, found.bucket, since, until)}')
    return html_response(request, viewer, page(view, "Statistics", body, "/stats"))


def change(current: float, previous: float) -> str:
    """The change against the period before, in words."""
    if current == previous:
        return "no change"
    if not previous:
        return "new"
    percent = (current - previous) / previous * 100
    return f"{'+' if percent > 0 else '−'}{abs(percent):.0f} %"


def _summary(now: Period, before: Period) -> str:
    def seconds(value: float | None) -> str:
        return duration(value) if value is not None else "none acknowledged"

    rows = [["Alerts raised", esc(now.total), esc(before.total), esc(change(now.total, before.total))]]
    for state in ("open", "acknowledged", "resolved"):
        rows.append([f"… {state} now", esc(now.by_state[state]), esc(before.by_state[state]),
                     esc(change(now.by_state[state], before.by_state[state]))])
    for label, ours, theirs in (("Time to acknowledge, median", now.median(), before.median()),
                                ("Time to acknowledge, p90", now.p90(), before.p90())):
        shift = change(ours, theirs) if ours is not None and theirs is not None else ""
        rows.append([esc(label), esc(seconds(ours)), esc(seconds(theirs)), esc(shift)])
    return table("Alerts raised in the range and in the period before", ("", "This range", "Period before",
                                                                          "Change"), rows, "")


def _by_kind(now: Period, before: Period) -> str:
    seen = set(now.by_severity_kind) | set(before.by_severity_kind)
    pairs = list(SEVERITY_KINDS) + sorted(seen - set(SEVERITY_KINDS))
    rows = [[esc(f"{severity} {kind}"), esc(now.by_severity_kind[(severity, kind)]),
             esc(before.by_severity_kind[(severity, kind)]),
             esc(change(now.by_severity_kind[(severity, kind)], before.by_severity_kind[(severity, kind)]))]
            for severity, kind in pairs]
    chart = bar_chart("Alerts by severity and kind in this range",
                      [(f"{severity} {kind}", now.by_severity_kind[(severity, kind)]) for severity, kind in pairs])
    return chart + table("Alerts by severity and kind", ("", "This range", "Period before", "Change"), rows, "")


def _top_links(top: list[tuple[str, int]]) -> str:
    if not top:
        return ""
    return ('<p class="meta">Alerts of: ' + ", ".join(link(f"/alerts?patient={patient}", patient)
                                                        for patient, _ in top) + "</p>")


def _rates(view: View, rates: dict[str, list[tuple[datetime, float]]], bucket: timedelta, since: datetime,
           until: datetime) -> str:
    if not rates:
        return "<p>No messages in this range.</p>"
    per = {timedelta(minutes=1): "minute", timedelta(hours=1): "hour", timedelta(days=1): "day"}[bucket]
    chart = line_chart(f"Readings per minute per route, averaged per {per}",
                       [Series(route, points) for route, points in rates.items()], since, until,
                       view.settings.time_zone, unit="/min", gap=None)
    totals = [[esc(route), esc(f"{sum(v for _, v in points) * bucket.total_seconds() / 60:.0f}"),
               esc(f"{max(v for _, v in points):.1f}")] for route, points in rates.items()]
    return chart + table("Readings per route in this range", ("Route", "Readings", f"Busiest {per}, per minute"),
                         totals, "")
