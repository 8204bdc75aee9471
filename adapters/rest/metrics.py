"""``GET /metrics`` in the Prometheus text format, computed from the database at scrape time.

Nothing is counted in process memory, so every engine node sharing the database answers the same numbers
and a restart loses none. Each scrape runs five bounded queries: messages by route and status, final ACK
codes by route, unresolved alerts by severity and state, outbox rows waiting or dead by destination (an index
range: sent rows are not counted), and the ACK latency of the last hour's messages
(at most LATENCY_ROWS of them), answered as a histogram of that window: use ``histogram_quantile`` on
the buckets directly, not on ``rate()``.
"""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from datetime import timedelta

from fastapi import APIRouter, Depends, Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from sqlalchemy import func, select

from adapters.rest.auth import require_read_key
from adapters.rest.channels import recent_latencies
from adapters.rest.deps import Store
from adapters.rest.json_rows import now
from adapters.sql_store import SqlStore
from adapters.sql_tables import alerts as a
from adapters.sql_tables import messages as m
from adapters.sql_tables import outbox as o

router = APIRouter(tags=["operations"], dependencies=[Depends(require_read_key)])

HISTOGRAM_WINDOW = timedelta(hours=1)
LATENCY_ROWS = 50_000
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@router.get("/metrics", summary="Prometheus metrics (text format 0.0.4)",
            responses={200: {"content": {"text/plain": {}}}})
def metrics(store: Store) -> Response:
    return Response(generate_latest(DatabaseCollector(store)), media_type=CONTENT_TYPE_PLAIN_0_0_4)


class DatabaseCollector:
    """A prometheus_client collector reading the engine's tables each time it is collected."""

    def __init__(self, store: SqlStore):
        self.store = store

    def collect(self) -> Iterator[Metric]:
        messages = CounterMetricFamily("vitalsstream_messages", "Messages received, by route and final status",
                                       labels=["route", "status"])
        acks = CounterMetricFamily("vitalsstream_acks", "Messages by route and the code of their final ACK",
                                   labels=["route", "code"])
        alerts = GaugeMetricFamily("vitalsstream_alerts_unresolved", "Alerts open or acknowledged",
                                   labels=["severity", "state"])
        with self.store.engine.connect() as conn:
            for route, status, count in conn.execute(select(m.c.route, m.c.status, func.count())
                                                     .group_by(m.c.route, m.c.status)):
                messages.add_metric([route, status], count)
            for route, code, count in conn.execute(select(m.c.route, m.c.ack_code, func.count())
                                                   .where(m.c.ack_code.is_not(None))
                                                   .group_by(m.c.route, m.c.ack_code)):
                acks.add_metric([route, code], count)
            for severity, state, count in conn.execute(select(a.c.severity, a.c.state, func.count())
                                                       .where(a.c.state.in_(("open", "acknowledged")))
                                                       .group_by(a.c.severity, a.c.state)):
                alerts.add_metric([severity, state], count)
            depth = GaugeMetricFamily("vitalsstream_outbox_depth", "Deliveries waiting in the outbox (PENDING or "
                                      "SENDING), by destination", labels=["destination"])
            dead = GaugeMetricFamily("vitalsstream_outbox_dead", "Dead letters waiting for an operator, by "
                                     "destination", labels=["destination"])
            waiting: dict[str, int] = {}
            for destination, state, count in conn.execute(select(o.c.destination, o.c.state, func.count())
                                                          .where(o.c.state.in_(("PENDING", "SENDING", "DEAD")))
                                                          .group_by(o.c.destination, o.c.state)):
                if state == "DEAD":
                    dead.add_metric([destination], count)
                else:
                    waiting[destination] = waiting.get(destination, 0) + count
            for destination, count in sorted(waiting.items()):
                depth.add_metric([destination], count)
            latencies = recent_latencies(conn, now() - HISTOGRAM_WINDOW, LATENCY_ROWS)
        yield from (messages, acks, alerts, depth, dead, _histogram(latencies))


def _histogram(latencies: dict[str, list[float]]) -> HistogramMetricFamily:
    family = HistogramMetricFamily("vitalsstream_ack_latency_last_hour_seconds",
                                   "Arrival to stored answer (processed_at - received_at) of the last hour's "
                                   "messages", labels=["route"])
    for route, values in sorted(latencies.items()):
        ordered = sorted(values)
        buckets = [(str(bound), bisect_right(ordered, bound)) for bound in BUCKETS]
        family.add_metric([route], [*buckets, ("+Inf", len(values))], sum(values))
    return family
