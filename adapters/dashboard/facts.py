"""What the integrations tiles show, gathered in a fixed number of bounded queries (no query per tile).

Counters cover a chosen window (received, filtered, stored, errored by the REST channels' GROUP BY,
restricted to the window on ``ix_messages_received``; sent from the outbox rows created in it), plus what
is waiting now (PENDING, SENDING and DEAD rows: the ``ix_outbox_state`` range). The health rules
(adapters/dashboard/health.py) take the last 15 minutes: counters, delivery attempts (``started_at`` index),
open ``destination_down`` incidents, silent devices (``device_status``, one row per device) and the
listeners as the engine's health callable reports them.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, join, or_, select

from adapters.dashboard.health import (
    WINDOW_MINUTES,
    DestinationFacts,
    RouteFacts,
    Verdict,
    destination_health,
    route_health,
)
from adapters.dashboard.settings import DashboardSettings
from adapters.rest.channels import COUNTERS, percentile, recent_latencies
from adapters.sql_store import SqlStore
from adapters.sql_tables import destinations as d
from adapters.sql_tables import device_status as s
from adapters.sql_tables import incidents as i
from adapters.sql_tables import messages as m
from adapters.sql_tables import outbox as o
from adapters.sql_tables import outbox_attempts as t

WAITING = ("PENDING", "SENDING")
FAILED_OUTCOMES = ("retry", "dead")


@dataclass
class RouteTile:
    name: str
    configured: bool
    verdict: Verdict
    facts: RouteFacts
    counters: dict[str, int]  # received, filtered, stored, errored (window), queued (now), sent (window)
    last_received_at: datetime | None
    latency_ms: tuple[float | None, float | None, int]  # p50, p90, samples (last 15 min)


@dataclass
class DestinationTile:
    name: str
    kind: str | None
    route: str | None
    verdict: Verdict
    facts: DestinationFacts
    sent: int  # in the window
    last_sent_at: datetime | None
    changed_at: datetime | None


@dataclass
class _Outbox:
    queued: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    oldest: dict[str, datetime] = field(default_factory=dict)
    dead: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    sent: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    last_sent: dict[str, datetime] = field(default_factory=dict)
    routes: dict[str, str] = field(default_factory=dict)  # destination -> route of its rows


def tiles(store: SqlStore, app_state: Any, settings: DashboardSettings, now: datetime,
          window: timedelta) -> tuple[list[RouteTile], list[DestinationTile]]:
    recent = now - timedelta(minutes=WINDOW_MINUTES)
    with store.engine.connect() as conn:
        counted = {row.route: row for row in conn.execute(COUNTERS.where(m.c.received_at >= now - window))}
        latest = {row.route: row for row in conn.execute(COUNTERS.where(m.c.received_at >= recent))}
        by_route, by_destination = _outbox(conn, now - window)
        attempts = _attempts(conn, recent)
        switches = {row.name: row for row in conn.execute(select(d))}
        down = set(conn.execute(select(i.c.subject).where(i.c.kind == "destination_down",
                                                          i.c.state.in_(("open", "acknowledged")))).scalars())
        silent = dict(conn.execute(select(s.c.route, func.count()).where(s.c.offline_since.is_not(None))
                                   .group_by(s.c.route)).all())
        latencies = recent_latencies(conn, recent)
    listeners = _listeners(app_state)
    names = sorted(set(app_state.routes) | set(counted) | set(listeners))
    routes = [_route_tile(name, name in app_state.routes, counted.get(name), latest.get(name), by_route,
                          listeners.get(name), silent.get(name, 0), latencies.get(name, []), settings, now)
              for name in names]
    configured = {item["name"]: item for item in app_state.destinations}
    destination_names = sorted(set(configured) | set(by_destination.routes) | set(switches))
    outbound = [_destination_tile(name, configured.get(name), by_destination, switches.get(name),
                                  attempts.get(name, {}), name in down, settings, now)
                for name in destination_names]
    return routes, outbound


def _outbox(conn: Connection, since: datetime) -> tuple[_Outbox, _Outbox]:
    """Waiting and dead rows now, sent rows created since ``since``: per route and per destination."""
    by_route, by_destination = _Outbox(), _Outbox()
    waiting = (select(o.c.destination, o.c.route, o.c.state, func.count().label("n"),
                      func.min(o.c.created_at).label("oldest"))
               .where(o.c.state.in_((*WAITING, "DEAD"))).group_by(o.c.destination, o.c.route, o.c.state))
    for row in conn.execute(waiting):
        for key, totals in ((row.route, by_route), (row.destination, by_destination)):
            totals.routes.setdefault(row.destination, row.route)
            if row.state == "DEAD":
                totals.dead[key] += row.n
                continue
            totals.queued[key] += row.n
            totals.oldest[key] = min(totals.oldest.get(key, row.oldest), row.oldest)
    sent = (select(o.c.destination, o.c.route, func.count().label("n"), func.max(o.c.sent_at).label("last"))
            .where(o.c.state == "SENT", o.c.created_at >= since).group_by(o.c.destination, o.c.route))
    for row in conn.execute(sent):
        for key, totals in ((row.route, by_route), (row.destination, by_destination)):
            totals.routes.setdefault(row.destination, row.route)
            totals.sent[key] += row.n
            if row.last is not None:
                totals.last_sent[key] = max(totals.last_sent.get(key, row.last), row.last)
    return by_route, by_destination


def _attempts(conn: Connection, since: datetime) -> dict[str, dict[str, int]]:
    """Delivery attempts since ``since``, per destination and outcome (sent, retry, dead), and under
    ``since_sent`` the failed ones after the destination's newest delivery in that time."""
    found: dict[str, dict[str, int]] = defaultdict(dict)
    attempts = join(t, o, o.c.id == t.c.outbox_id)
    statement = (select(o.c.destination, t.c.outcome, func.count()).select_from(attempts)
                 .where(t.c.started_at >= since).group_by(o.c.destination, t.c.outcome))
    for destination, outcome, count in conn.execute(statement):
        found[destination][outcome] = int(count)
    last_sent = (select(o.c.destination, func.max(t.c.started_at).label("at")).select_from(attempts)
                 .where(t.c.started_at >= since, t.c.outcome == "sent").group_by(o.c.destination).subquery())
    failing = (select(o.c.destination, func.count()).select_from(
                   attempts.outerjoin(last_sent, last_sent.c.destination == o.c.destination))
               .where(t.c.started_at >= since, t.c.outcome.in_(FAILED_OUTCOMES),
                      or_(last_sent.c.at.is_(None), t.c.started_at > last_sent.c.at))
               .group_by(o.c.destination))
    for destination, count in conn.execute(failing):
        found[destination]["since_sent"] = int(count)
    return found


def _listeners(app_state: Any) -> dict[str, dict[str, Any]]:
    report = app_state.health() if callable(getattr(app_state, "health", None)) else {}
    return {item["route"]: item for item in report.get("channels", []) if "route" in item}


def _route_tile(name: str, configured: bool, window: Any, recent: Any, outbox: _Outbox,
                listener: dict[str, Any] | None, silent_devices: int, latencies: list[float],
                settings: DashboardSettings, now: datetime) -> RouteTile:
    last = window.last_received_at if window is not None else None
    facts = RouteFacts(
        name=name, listening=bool(listener["listening"]) if listener else None,
        port=listener.get("port") if listener else None, last_received_at=last,
        expected_interval_seconds=settings.expected_interval(name),
        received_recent=int(recent.received) if recent is not None else 0,
        errored_recent=int(recent.errored) if recent is not None else 0,
        error_rate_limit=settings.error_rate_limit(name), queued=outbox.queued.get(name, 0),
        oldest_queued_at=outbox.oldest.get(name), silent_devices=silent_devices)
    counters = {key: int(getattr(window, key)) if window is not None else 0
                for key in ("received", "filtered", "stored", "errored")}
    counters.update(queued=facts.queued, sent=outbox.sent.get(name, 0))
    p50, p90 = percentile(latencies, 0.5), percentile(latencies, 0.9)
    return RouteTile(name, configured, route_health(facts, now, settings.queue_age_limit_seconds), facts, counters,
                     last, (_ms(p50), _ms(p90), len(latencies)))


def _destination_tile(name: str, config: dict[str, Any] | None, outbox: _Outbox, switch: Any,
                      attempts: dict[str, int], down: bool, settings: DashboardSettings,
                      now: datetime) -> DestinationTile:
    paused = bool(switch.paused) if switch is not None else False
    facts = DestinationFacts(
        name=name, kind=config.get("kind") if config else None, paused=paused,
        paused_by=switch.changed_by if paused else None, queued=outbox.queued.get(name, 0),
        oldest_queued_at=outbox.oldest.get(name), dead_letters=outbox.dead.get(name, 0),
        failed_recent=sum(attempts.get(outcome, 0) for outcome in FAILED_OUTCOMES),
        sent_recent=attempts.get("sent", 0), failed_since_sent=attempts.get("since_sent", 0), down_incident=down)
    return DestinationTile(name, facts.kind, config.get("route") if config else outbox.routes.get(name),
                           destination_health(facts, now, settings.queue_age_limit_seconds), facts,
                           outbox.sent.get(name, 0), outbox.last_sent.get(name),
                           switch.changed_at if switch is not None else None)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)
