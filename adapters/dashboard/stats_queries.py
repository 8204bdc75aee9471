"""The statistics page's queries: a handful of GROUP BYs over a time range, each bounded by it.

Alerts are counted by when they were first seen (the observation time) in [since, until) and in the period
of the same length before it; time to acknowledge runs from ``created_at`` (when the alert was stored,
visible to staff) to ``acknowledged_at``. Readings per minute come from ``messages.reading_count`` summed per
route and time bucket (``ix_messages_received``), so the readings table is not scanned. Buckets are computed
in SQL per dialect: a minute for ranges up to 6 hours, an hour up to 7 days, else a day.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, literal_column, select

from adapters.rest.channels import percentile
from adapters.sql_tables import alerts as a
from adapters.sql_tables import messages as m

TOP = 10
MAX_DURATIONS = 50_000  # acknowledged alerts looked at per query (both periods)


@dataclass
class Period:
    by_severity_kind: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_state: Counter[str] = field(default_factory=Counter)
    to_acknowledge: list[float] = field(default_factory=list)  # seconds

    @property
    def total(self) -> int:
        return sum(self.by_severity_kind.values())

    def median(self) -> float | None:
        return percentile(self.to_acknowledge, 0.5)

    def p90(self) -> float | None:
        return percentile(self.to_acknowledge, 0.9)


@dataclass
class Statistics:
    current: Period
    previous: Period
    top_patients: list[tuple[str, int]]
    top_devices: list[tuple[str, int]]
    bucket: timedelta
    readings_per_minute: dict[str, list[tuple[datetime, float]]]  # route -> (bucket start, readings/min)


def statistics(conn: Connection, dialect: str, since: datetime, until: datetime) -> Statistics:
    before = since - (until - since)
    current, previous = _counts(conn, since, until), _counts(conn, before, since)
    for first_seen, created, acknowledged in conn.execute(
            select(a.c.first_seen_at, a.c.created_at, a.c.acknowledged_at)
            .where(a.c.first_seen_at >= before, a.c.first_seen_at < until, a.c.acknowledged_at.is_not(None))
            .limit(MAX_DURATIONS)):
        period = current if first_seen >= since else previous
        period.to_acknowledge.append(max((acknowledged - created).total_seconds(), 0.0))
    bucket = bucket_size(until - since)
    return Statistics(current, previous, _top(conn, a.c.patient_id, since, until),
                      _top(conn, a.c.device_id, since, until), bucket, _rates(conn, dialect, since, until, bucket))


def bucket_size(span: timedelta) -> timedelta:
    if span <= timedelta(hours=6):
        return timedelta(minutes=1)
    if span <= timedelta(days=7):
        return timedelta(hours=1)
    return timedelta(days=1)


def _counts(conn: Connection, since: datetime, until: datetime) -> Period:
    period = Period()
    for severity, kind, state, count in conn.execute(
            select(a.c.severity, a.c.kind, a.c.state, func.count())
            .where(a.c.first_seen_at >= since, a.c.first_seen_at < until)
            .group_by(a.c.severity, a.c.kind, a.c.state)):
        period.by_severity_kind[(severity, kind)] += count
        period.by_state[state] += count
    return period


def _top(conn: Connection, column: Any, since: datetime, until: datetime) -> list[tuple[str, int]]:
    counted = func.count().label("alerts")
    rows = conn.execute(select(column, counted).where(a.c.first_seen_at >= since, a.c.first_seen_at < until)
                        .group_by(column).order_by(counted.desc(), column).limit(TOP))
    return [(str(name), int(count)) for name, count in rows]


def _rates(conn: Connection, dialect: str, since: datetime, until: datetime,
           bucket: timedelta) -> dict[str, list[tuple[datetime, float]]]:
    """Readings per minute of each route, every bucket of the range present (empty ones as 0)."""
    start = time_bucket(m.c.received_at, bucket, dialect).label("bucket")
    totals: dict[str, dict[datetime, int]] = defaultdict(dict)
    for route, moment, readings in conn.execute(
            select(m.c.route, start, func.coalesce(func.sum(m.c.reading_count), 0))
            .where(m.c.received_at >= since, m.c.received_at < until).group_by(m.c.route, start)):
        totals[route][_as_time(moment)] = int(readings)
    minutes = bucket.total_seconds() / 60
    buckets = _buckets(since, until, bucket)
    return {route: [(moment, counts.get(moment, 0) / minutes) for moment in buckets]
            for route, counts in sorted(totals.items())}


def time_bucket(column: Any, bucket: timedelta, dialect: str) -> ColumnElement[Any]:
    """The start of ``column``'s minute, hour or day, written with literals (no bound parameters: PostgreSQL and
    SQL Server would not see the GROUP BY expression as the selected one)."""
    unit = {timedelta(minutes=1): "minute", timedelta(hours=1): "hour", timedelta(days=1): "day"}[bucket]
    if dialect == "postgresql":
        return func.date_trunc(literal_column(f"'{unit}'"), column)
    if dialect == "mssql":
        return func.dateadd(literal_column(unit), func.datediff(literal_column(unit), literal_column("0"), column),
                            literal_column("0"))
    pattern = {"minute": "%Y-%m-%d %H:%M:00", "hour": "%Y-%m-%d %H:00:00", "day": "%Y-%m-%d 00:00:00"}[unit]
    return func.strftime(literal_column(f"'{pattern}'"), column)


def _buckets(since: datetime, until: datetime, bucket: timedelta) -> list[datetime]:
    moment = _floor(since, bucket)
    found = []
    while moment < until:
        found.append(moment)
        moment += bucket
    return found


def _floor(moment: datetime, bucket: timedelta) -> datetime:
    if bucket >= timedelta(days=1):
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if bucket >= timedelta(hours=1):
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(second=0, microsecond=0)


def _as_time(value: Any) -> datetime:
    """A bucket as SQLite (text) or a server (a timestamp) answers it, as a naive UTC datetime."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime.fromisoformat(str(value))
