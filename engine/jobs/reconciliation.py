"""Reconciliation: per route and hour of receipt, what came in against what the outbox destinations confirmed.

For each hour (the current one and ``lookback_hours`` before it, plus every hour an unresolved mismatch
incident names), per route: messages ``received`` (every row) and ``stored`` (status STORED); observation
records ``forwarded`` (outbox rows of kind observations for those messages) and ``confirmed`` (SENT). The
counts are upserted into ``reconciliation``. Three findings raise a ``reconciliation_mismatch`` incident
about ``route/hour`` (cleared when a later run finds the hour clean):

- missing: a STORED message with readings, on a route with outbox destinations taking readings, has no
  observations row for one of them (the caller names them per route); only messages from the destination's
  first row on count (older ones were stored before it was enabled, and are never sent to it);
- delayed: an observations row still not SENT (PENDING, SENDING or DEAD) ``delayed_after_minutes`` after
  it was created;
- duplicated: two observations rows for one destination carry the same message and patient (alert rows are
  left out: one message may raise several alerts for one patient).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, Select, and_, case, exists, func, insert, select, update

from adapters.sql_store import SqlStore, utc_naive
from adapters.sql_tables import messages, outbox, reconciliation
from engine.incidents import active_keys, clear_incident, raise_incident

DEFAULT_LOOKBACK_HOURS = 3
DEFAULT_DELAYED_AFTER_MINUTES = 15.0
SAMPLES = 10  # ids of affected messages named in an incident's details
UNSENT = ("PENDING", "SENDING", "DEAD")
HOUR = timedelta(hours=1)


@dataclass
class HourCounts:
    route: str
    hour_start: datetime
    received: int = 0
    stored: int = 0
    forwarded: int = 0
    confirmed: int = 0
    missing: int = 0
    delayed: int = 0
    duplicated: int = 0
    samples: dict[str, list[int]] = field(default_factory=dict)  # finding -> message ids

    @property
    def key(self) -> str:
        return incident_key(self.route, self.hour_start)

    @property
    def clean(self) -> bool:
        return not (self.missing or self.delayed or self.duplicated)


@dataclass(frozen=True)
class ReconciliationResult:
    hours: list[datetime]
    counts: list[HourCounts] = field(default_factory=list)
    raised: list[str] = field(default_factory=list)  # incident subjects opened now
    cleared: list[str] = field(default_factory=list)

    @property
    def noteworthy(self) -> bool:
        return bool(self.raised or self.cleared)


def incident_key(route: str, hour_start: datetime) -> str:
    return f"{route}/{hour_start:%Y-%m-%dT%H:00Z}"


def hour_of_key(key: str) -> datetime | None:
    """The hour a ``route/hour`` subject names (None when it is not one)."""
    try:
        return datetime.strptime(key.rpartition("/")[2], "%Y-%m-%dT%H:00Z")
    except ValueError:
        return None


def reconcile(store: SqlStore, destinations: Mapping[str, Sequence[str]], now: datetime,
              lookback_hours: int = DEFAULT_LOOKBACK_HOURS,
              delayed_after_minutes: float = DEFAULT_DELAYED_AFTER_MINUTES) -> ReconciliationResult:
    """``destinations``: route name -> the outbox destinations that take its readings."""
    moment = utc_naive(now)
    current = moment.replace(minute=0, second=0, microsecond=0)
    with store.engine.connect() as conn:
        reopened = {hour for key in active_keys(conn, "reconciliation_mismatch")
                    if (hour := hour_of_key(key)) is not None}
    hours = sorted({current - k * HOUR for k in range(lookback_hours + 1)} | reopened)
    result = ReconciliationResult(hours)
    late = moment - timedelta(minutes=delayed_after_minutes)
    for hour in hours:
        with store.engine.connect() as conn:
            counts = _count_hour(conn, hour, destinations, late)
        with store.transaction() as tx:
            _record_hour(tx.conn, hour, counts, moment, result)
        result.counts.extend(counts.values())
    return result


def _count_hour(conn: Connection, hour: datetime, destinations: Mapping[str, Sequence[str]],
                late: datetime) -> dict[str, HourCounts]:
    m, o = messages.c, outbox.c
    in_hour = and_(m.received_at >= hour, m.received_at < hour + HOUR)
    counts: dict[str, HourCounts] = {}

    def of(route: str) -> HourCounts:
        return counts.setdefault(route, HourCounts(route, hour))

    for route, received, stored in conn.execute(
            select(m.route, func.count(), _total(m.status == "STORED")).where(in_hour).group_by(m.route)):
        of(route).received, of(route).stored = int(received), int(stored)
    observations = (select().select_from(outbox).join(messages, m.id == o.message_id)
                    .where(in_hour, o.kind == "observations"))
    is_delayed = and_(o.state.in_(UNSENT), o.created_at < late)
    for route, forwarded, confirmed, delayed in conn.execute(
            observations.add_columns(m.route, func.count(), _total(o.state == "SENT"), _total(is_delayed))
            .group_by(m.route)):
        row = of(route)
        row.forwarded, row.confirmed, row.delayed = int(forwarded), int(confirmed), int(delayed)
        if delayed:
            row.samples["delayed"] = _ids(conn, observations.add_columns(o.message_id).where(is_delayed))
    for route, message_id in conn.execute(
            observations.add_columns(m.route, o.message_id)
            .group_by(m.route, o.destination, o.message_id, o.patient_id).having(func.count() > 1)):
        of(route).duplicated += 1
        of(route).samples.setdefault("duplicated", []).append(int(message_id))
    for route, wanted in destinations.items():
        if route in counts:
            _count_missing(conn, in_hour, route, wanted, counts[route])
    for row in counts.values():
        row.samples = {finding: sorted(set(ids))[:SAMPLES] for finding, ids in row.samples.items()}
    return counts


def _count_missing(conn: Connection, in_hour: ColumnElement[bool], route: str, wanted: Iterable[str],
                   row: HourCounts) -> None:
    m, o = messages.c, outbox.c
    for destination in wanted:
        first = conn.execute(select(func.min(o.message_id)).where(o.destination == destination, o.route == route,
                                                                   o.kind == "observations")).scalar()
        if first is None:
            continue  # nothing queued for it yet: enabled just now, or nothing stored since
        has_row = exists().where(o.message_id == m.id, o.destination == destination, o.kind == "observations")
        without = (select().select_from(messages)
                   .where(in_hour, m.route == route, m.status == "STORED", m.reading_count > 0, m.id > first,
                          ~has_row))
        missing = int(conn.execute(without.add_columns(func.count())).scalar_one())
        if missing:
            row.missing += missing
            row.samples.setdefault("missing", []).extend(_ids(conn, without.add_columns(m.id)))


def _record_hour(conn: Connection, hour: datetime, counts: dict[str, HourCounts], moment: datetime,
                 result: ReconciliationResult) -> None:
    for row in counts.values():
        _upsert(conn, row, moment)
        if not row.clean and raise_incident(
                conn, "reconciliation_mismatch", row.key, "warning",
                f"route {row.route}, hour {hour:%Y-%m-%d %H}:00 UTC: {row.missing} missing, {row.delayed} "
                f"delayed, {row.duplicated} duplicated observation record(s)", _details(row), moment):
            result.raised.append(row.key)
    clean_now = {row.key for row in counts.values() if row.clean}
    for key in active_keys(conn, "reconciliation_mismatch"):
        if hour_of_key(key) == hour and (key in clean_now or key.rpartition("/")[0] not in counts):
            clear_incident(conn, "reconciliation_mismatch", key, moment)
            result.cleared.append(key)


def _upsert(conn: Connection, row: HourCounts, moment: datetime) -> None:
    values = {"received": row.received, "stored": row.stored, "forwarded": row.forwarded,
              "confirmed": row.confirmed, "missing": row.missing, "delayed": row.delayed,
              "duplicated": row.duplicated, "computed_at": moment}
    where = and_(reconciliation.c.route == row.route, reconciliation.c.hour_start == row.hour_start)
    if not conn.execute(update(reconciliation).where(where).values(values)).rowcount:
        conn.execute(insert(reconciliation).values(route=row.route, hour_start=row.hour_start, **values))


def _details(row: HourCounts) -> dict[str, object]:
    return {"route": row.route, "hour_start": row.hour_start, "received": row.received, "stored": row.stored,
            "forwarded": row.forwarded, "confirmed": row.confirmed, "missing": row.missing,
            "delayed": row.delayed, "duplicated": row.duplicated,
            **{f"{finding}_message_ids": ids for finding, ids in sorted(row.samples.items())}}


def _total(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """SUM(CASE WHEN condition THEN 1 ELSE 0 END): never NULL, so no dialect warns about dropped NULLs."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _ids(conn: Connection, statement: Select) -> list[int]:
    """The first SAMPLES message ids ``statement`` (selecting one id column) finds."""
    return [int(i) for i in conn.execute(statement.order_by(messages.c.id).limit(SAMPLES)).scalars()]
