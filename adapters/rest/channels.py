"""``GET /api/v1/channels``: per route, what came in and what became of it, from the messages table.

One GROUP BY over ``messages`` gives the counters and the last arrival of every route, one over the outbox
rows still waiting (PENDING or SENDING) what each route has queued for its destinations; routes the engine
was configured with (create_app's ``routes``) are listed even before their first message. ACK latency
(processed_at - received_at) is taken from the newest rows of the last 15 minutes, in Python.
"""
from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import Connection, case, func, select

from adapters.rest.auth import require_read_key
from adapters.rest.deps import Store
from adapters.rest.json_rows import iso, now
from adapters.sql_tables import messages as m
from adapters.sql_tables import outbox as o

router = APIRouter(prefix="/api/v1", tags=["operations"], dependencies=[Depends(require_read_key)])

LATENCY_WINDOW = timedelta(minutes=15)
LATENCY_ROWS = 5000  # newest messages of the window looked at, across routes


def _count(status: str) -> Any:
    return func.coalesce(func.sum(case((m.c.status == status, 1), else_=0)), 0)


COUNTERS = (select(m.c.route, func.count().label("received"), _count("STORED").label("stored"),
                   _count("FILTERED").label("filtered"), _count("ERROR").label("errored"),
                   func.max(m.c.received_at).label("last_received_at"))
            .group_by(m.c.route))
QUEUED = (select(o.c.route, func.count().label("queued")).where(o.c.state.in_(("PENDING", "SENDING")))
          .group_by(o.c.route))


@router.get("/channels", summary="Channels (routes): message counters, last arrival, ACK latency")
def list_channels(store: Store, request: Request) -> dict[str, Any]:
    configured = set(request.app.state.routes)  # create_app's routes, by name
    with store.engine.connect() as conn:
        counted = {row.route: row for row in conn.execute(COUNTERS)}
        queued = {row.route: int(row.queued) for row in conn.execute(QUEUED)}
        latencies = recent_latencies(conn, now() - LATENCY_WINDOW)
    items = [_channel(route, route in configured, counted.get(route), queued.get(route, 0), latencies.get(route, []))
             for route in sorted(configured | set(counted))]
    return {"items": items}


def _channel(route: str, configured: bool, row: Any, queued: int, latencies: list[float]) -> dict[str, Any]:
    last = row.last_received_at if row is not None else None
    return {"route": route, "configured": configured,
            "received": int(row.received) if row is not None else 0,
            "stored": int(row.stored) if row is not None else 0,
            "filtered": int(row.filtered) if row is not None else 0,
            "errored": int(row.errored) if row is not None else 0,
            "queued": queued,
            "last_received_at": iso(last) if isinstance(last, datetime) else None,
            "ack_latency_ms": {"window_minutes": int(LATENCY_WINDOW.total_seconds() // 60),
                               "samples": len(latencies),
                               "p50": _ms(percentile(latencies, 0.5)), "p90": _ms(percentile(latencies, 0.9))}}


def recent_latencies(conn: Connection, since: datetime, limit: int = LATENCY_ROWS) -> dict[str, list[float]]:
    """Seconds from arrival to the stored answer, per route, of the newest ``limit`` messages since ``since``."""
    rows = conn.execute(select(m.c.route, m.c.received_at, m.c.processed_at)
                        .where(m.c.received_at >= since, m.c.processed_at.is_not(None))
                        .order_by(m.c.received_at.desc()).limit(limit))
    found: dict[str, list[float]] = defaultdict(list)
    for route, received, processed in rows:
        found[route].append(max((processed - received).total_seconds(), 0.0))
    return found


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest rank: the smallest value with at least ``fraction`` of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)
