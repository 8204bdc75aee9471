"""The reporting views (sql/<dialect>/006_views.sql, docs/bi-views.md).

On SQLite and PostgreSQL every view's rows are checked exactly, seeded through the engine's own path with
controlled clocks: the channel (HL7 through Channel.dispatch_batch, receipt times given), the outbox worker
driven one step at a time with an in-process receiver, operator actions on alerts, incidents and the
stale-device job. The SQL Server twin cannot run here: it is parsed with sqlglot and compared with the
PostgreSQL and SQLite views column for column, table for table and word for word. The PostgreSQL GRANTs of
docs/bi-views.md are run as written: the reader they make sees the views and nothing else.
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import sqlglot
from sqlalchemy import DateTime, create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, ProgrammingError

from adapters.delivery import DeliveryFailed
from adapters.sql_store import SqlStore
from adapters.sql_tables import alerts, incidents
from engine import operator_actions
from engine.channel import Channel, Inbound, Receipt, Route
from engine.incidents import change_incident_state, clear_incident, raise_incident
from engine.jobs.stale_devices import check_devices
from engine.migrations import SQL_DIR, statements, upgrade
from engine.outbox import Lane, OutboxWorker
from engine.outbox_actions import pause
from engine.outbox_rows import OutboxTarget
from engine.routes.housekeeping import DevicesConfig
from tests.messages import oru

exp = sqlglot.exp
DOCS = SQL_DIR.parent / "docs" / "bi-views.md"
SCRIPT = "006_views.sql"

# The contract reports bind to: every view and its columns, in order (docs/bi-views.md describes each).
VIEWS: dict[str, tuple[str, ...]] = {
    "bi_alert_trends_hourly": ("hour", "severity", "kind", "raised", "acknowledged", "resolved",
                               "raised_acknowledged", "avg_minutes_to_acknowledge"),
    "bi_device_health": ("device_id", "last_patient_id", "last_route", "last_reading_at", "last_observed_at",
                         "readings_last_24h", "offline_incident_open", "offline_incident_state", "offline_since",
                         "expected_interval_seconds", "minutes_since_last_reading"),
    "bi_integration_throughput_hourly": ("route", "hour", "received", "stored", "filtered", "errored",
                                         "readings_stored", "alerts_raised", "outbox_created", "outbox_sent",
                                         "outbox_dead", "avg_ack_latency_ms"),
    "bi_outbox_throughput_hourly": ("route", "hour", "destination", "kind", "created", "sent", "dead",
                                    "suppressed", "waiting", "avg_delivery_latency_ms"),
    "bi_outbox_status": ("destination", "paused", "pending", "sending", "sent", "dead", "suppressed",
                         "oldest_pending_at", "oldest_pending_age_seconds"),
}
TIME_COLUMNS = {"hour", "last_reading_at", "last_observed_at", "offline_since", "oldest_pending_at"}


def view_rows(store: SqlStore, view: str, order_by: str) -> list[tuple[Any, ...]]:
    """The view's rows in the contract's column order; times as datetime on every database (SQLite: text)."""
    columns = VIEWS[view]
    query = text(f"SELECT {', '.join(columns)} FROM {view} ORDER BY {order_by}").columns(
        **{name: DateTime() for name in columns if name in TIME_COLUMNS})
    with store.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def hl7_time(moment: datetime) -> str:
    return f"{moment:%Y%m%d%H%M%S}"


def mean_ms(*spans: timedelta) -> float:
    """The views' average: whole microseconds summed, divided by the count, then by 1,000."""
    return sum(span // timedelta(microseconds=1) for span in spans) / len(spans) / 1000


class Clock:
    """A clock the test sets: the channel's, the outbox worker's."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def set_operator_clock(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    """When the next acknowledgement or resolution happens (operator actions read their own clock)."""
    monkeypatch.setattr(operator_actions, "_now", lambda: moment)


def alert_id(store: SqlStore, patient: str, vital: str, state: str = "open") -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(alerts.c.id).where(alerts.c.patient_id == patient, alerts.c.vital == vital,
                                                          alerts.c.state == state)).scalar_one())


# --- bi_alert_trends_hourly ------------------------------------------------------------------------------

ALERT_DAY = datetime(2024, 9, 11)


def seed_alerts(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Five alerts over two hours: repeats, a trend, acknowledgements and resolutions in later hours."""
    channel = Channel(store, clock=Clock(datetime(2024, 9, 11, 10, 0, tzinfo=UTC)))
    route = Route(name="icu")

    def breach(control_id: str, patient: str, hour: int, minute: int, values: list[tuple[str, float]]) -> None:
        observed = ALERT_DAY.replace(hour=hour, minute=minute)
        receipt = channel.dispatch(oru(control_id, patient, hl7_time(observed), values), route)
        assert receipt.status == "STORED", receipt.error

    def act(alert: int, action: str, moment: datetime) -> None:
        set_operator_clock(monkeypatch, moment)
        operator_actions.change_alert_state(store, alert, action, "nurse.jones")

    breach("T-1", "P1", 8, 5, [("heart_rate", 130)])  # warning threshold, first seen 08:05
    breach("T-2", "P1", 8, 7, [("heart_rate", 128)])  # the same alert again: an update, not a new one
    breach("T-3", "P2", 8, 20, [("heart_rate", 125), ("spo2", 85)])  # warning (heart rate), critical (SpO2)
    breach("T-4", "P3", 9, 10, [("heart_rate", 80), ("spo2", 98)])
    breach("T-5", "P3", 9, 15, [("heart_rate", 105), ("spo2", 92)])  # critical trend, warning SpO2
    act(alert_id(store, "P1", "heart_rate"), "acknowledge", ALERT_DAY.replace(hour=8, minute=12, second=30))
    act(alert_id(store, "P2", "heart_rate"), "acknowledge", ALERT_DAY.replace(hour=9))
    act(alert_id(store, "P2", "spo2"), "resolve", ALERT_DAY.replace(hour=8, minute=50))  # never acknowledged
    act(alert_id(store, "P3", "heart_rate,spo2"), "acknowledge",
        ALERT_DAY.replace(hour=9, minute=16, second=20, microsecond=250_000))
    act(alert_id(store, "P1", "heart_rate", "acknowledged"), "resolve", ALERT_DAY.replace(hour=9, minute=40))


def test_alert_trends_count_each_event_in_its_own_hour(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_alerts(store, monkeypatch)
    eight, nine = ALERT_DAY.replace(hour=8), ALERT_DAY.replace(hour=9)
    assert view_rows(store, "bi_alert_trends_hourly", "hour, severity, kind") == [
        # hour, severity, kind, raised, acknowledged, resolved, raised_acknowledged, avg minutes to acknowledge
        (eight, "critical", "threshold", 1, 0, 1, 0, None),  # resolved without an acknowledgement
        # 7.5 and 40 minutes from first breach to acknowledgement (the second one in the next hour)
        (eight, "warning", "threshold", 2, 1, 0, 2, (450_000_000 + 2_400_000_000) / 2 / 60_000_000),
        (nine, "critical", "trend", 1, 1, 0, 1, 80_250_000 / 1 / 60_000_000),  # 1 min 20.25 s
        (nine, "warning", "threshold", 1, 1, 1, 0, None),  # P3's SpO2; P2 acknowledged, P1 resolved at 09:xx
    ]


def test_sqlite_hours_are_text_in_the_stored_format(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """'YYYY-MM-DD HH:00:00.000000', so an hour compares with the stored times as text (Grafana's filters)."""
    store = SqlStore.from_url(sqlite_url)
    try:
        upgrade(store.engine)
        seed_alerts(store, monkeypatch)
        with store.engine.connect() as conn:
            hours = conn.exec_driver_sql("SELECT DISTINCT hour FROM bi_alert_trends_hourly ORDER BY hour").scalars()
            assert list(hours) == ["2024-09-11 08:00:00.000000", "2024-09-11 09:00:00.000000"]
            first_seen = conn.exec_driver_sql("SELECT MIN(first_seen_at) FROM alerts").scalar_one()
            assert first_seen == "2024-09-11 08:05:00.000000"
            raised_at_eight = conn.exec_driver_sql(
                "SELECT SUM(raised) FROM bi_alert_trends_hourly "
                "WHERE hour >= '2024-09-11 08:00:00.000000' AND hour < '2024-09-11 09:00:00.000000'").scalar_one()
            assert raised_at_eight == 3
    finally:
        store.close()


# --- bi_device_health ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DeviceScene:
    now: datetime  # naive UTC, whole seconds; the database's clock is a little later when the view is read
    job_at: datetime  # when the stale-device job ran


def seed_devices(store: SqlStore) -> DeviceScene:
    """Four devices relative to the real time (the view measures silence against the database's clock)."""
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    clock = Clock(now.replace(tzinfo=UTC))
    channel = Channel(store, clock=clock)
    icu, ward = Route(name="icu"), Route(name="ward")

    def reading(control_id: str, device: str, patient: str, route: Route, stored: timedelta,
                values: list[tuple[str, float]], observed: timedelta | None = None) -> None:
        clock.now = (now - stored).replace(tzinfo=UTC)
        moment = hl7_time(now - (stored if observed is None else observed))
        receipt = channel.dispatch(oru(control_id, patient, moment, values, device=device), route)
        assert (receipt.status, receipt.alerts) == ("STORED", 0), receipt.error

    reading("D-1", "MON-A", "P-A1", icu, timedelta(hours=25), [("heart_rate", 70)])
    reading("D-2", "MON-A", "P-A1", icu, timedelta(hours=2), [("heart_rate", 72), ("spo2", 97)])
    reading("D-3", "MON-A", "P-A2", icu, timedelta(minutes=10, seconds=30), [("heart_rate", 74)])
    # stored 5 min ago, observed 30 h ago by the device's clock: silent only by its own account
    reading("D-4", "MON-B", "P-B", ward, timedelta(minutes=5, seconds=10), [("heart_rate", 70)],
            observed=timedelta(hours=30))
    reading("D-5", "MON-D", "P-D", ward, timedelta(minutes=40), [("spo2", 98)])
    job_at = now - timedelta(minutes=1)
    result = check_devices(store, {"icu": DevicesConfig(expected_interval_seconds=300),
                                   "ward": DevicesConfig(expected_interval_seconds=0)}, job_at)
    assert result.went_offline == ["MON-A"]
    with store.engine.connect() as conn:
        offline = conn.execute(select(incidents.c.id).where(incidents.c.subject == "MON-A")).scalar_one()
    change_incident_state(store, offline, "acknowledge", "ops", now=job_at + timedelta(seconds=20))
    with store.transaction() as tx:  # an earlier silence of MON-D, found fixed since
        raise_incident(tx.conn, "device_offline", "MON-D", "warning", "device MON-D on route ward: nothing",
                       {"device_id": "MON-D"}, now - timedelta(minutes=50))
        assert clear_incident(tx.conn, "device_offline", "MON-D", now - timedelta(minutes=45))
    reading("D-6", "MON-C", "P-C", icu, timedelta(seconds=20), [("heart_rate", 71)])  # after the job ran
    return DeviceScene(now, job_at)


def test_device_health_shows_each_devices_latest_reading_and_silence(store: SqlStore) -> None:
    scene = seed_devices(store)
    now = scene.now
    assert view_rows(store, "bi_device_health", "device_id") == [
        # device, last patient, route, last reading stored, last observed, readings observed in 24 h,
        # offline incident open, its state, since, expected interval, whole minutes since the last reading
        ("MON-A", "P-A2", "icu", now - timedelta(minutes=10, seconds=30), now - timedelta(minutes=10, seconds=30),
         3, 1, "acknowledged", scene.job_at, 300, 10),
        ("MON-B", "P-B", "ward", now - timedelta(minutes=5, seconds=10), now - timedelta(hours=30),
         0, 0, None, None, 0, 5),
        ("MON-C", "P-C", "icu", now - timedelta(seconds=20), now - timedelta(seconds=20),
         1, 0, None, None, None, 0),  # not seen by the stale-device job yet
        ("MON-D", "P-D", "ward", now - timedelta(minutes=40), now - timedelta(minutes=40),
         1, 0, None, None, 0, 40),  # its incident was resolved
    ]


# --- bi_integration_throughput_hourly, bi_outbox_throughput_hourly, bi_outbox_status ----------------------

DAY = datetime(2024, 9, 12, tzinfo=UTC)
ICU = Route(name="icu", sending_applications=frozenset({"TESTMON"}), outbox=(
    OutboxTarget("ehr", readings=True, alerts=True),
    OutboxTarget("pager", readings=False, alerts=True, severities=frozenset({"critical"}), suppress_seconds=4 * 3600)))
WARD = Route(name="ward")


def at(hour: int, minute: int = 0, second: int = 0, microsecond: int = 0) -> datetime:
    return DAY.replace(hour=hour, minute=minute, second=second, microsecond=microsecond)


def naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None)


class Receiver:
    """A destination that takes every record except the kinds it refuses for good (a permanent failure)."""

    def __init__(self, refuses: frozenset[str] = frozenset()):
        self.refuses = refuses

    def send(self, kind: str, key: str, payload: dict[str, Any]) -> str:
        if kind in self.refuses:
            raise DeliveryFailed(f"{kind} records are not taken here", permanent=True)
        return f"R-{key}"

    def close(self) -> None:
        pass


def deliver_due(worker: OutboxWorker, lane: Lane) -> None:
    """What the worker's lane does, one claim at a time, until nothing of the destination is due."""
    while rows := worker.claim(lane, 10):
        for row in rows:
            worker.deliver(lane, row)


def seed_traffic(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two routes over four hours: every message status, an exact resend, outbox records sent, dead,
    suppressed, waiting and being sent; an hour with messages and no outbox records (11:00) and one with
    outbox records and no messages (12:00: a message's records written after the hour turned, resolve
    notices)."""
    clock = Clock(at(10))
    channel = Channel(store, clock=clock)

    def receive(raw: bytes, route: Route, received: datetime, answered_after_us: int) -> Receipt:
        clock.now = received + timedelta(microseconds=answered_after_us)
        [receipt] = channel.dispatch_batch([Inbound(raw, route, received_at=received)])
        return receipt

    first = oru("M-1", "R1", "20240912100000", [("heart_rate", 70), ("spo2", 97)])
    receipts = [
        receive(first, ICU, at(10, 0), 2500),
        receive(oru("M-2", "R2", "20240912103000", [("heart_rate", 150)]), ICU, at(10, 30), 1250),
        receive(oru("M-3", "R3", "20240912104000", [("heart_rate", 70)], sender="OTHERMON"), ICU, at(10, 40), 1000),
        receive(b"this is not HL7", ICU, at(10, 50), 750),
        receive(first, ICU, at(10, 55), 600),  # an exact resend: answered again, nothing written
        receive(oru("W-1", "R9", "20240912101500", [("heart_rate", 70), ("spo2", 98), ("temperature", 36.8)]),
                WARD, at(10, 15), 500),
    ]
    assert [(r.status, r.duplicate, r.readings, r.alerts) for r in receipts] == [
        ("STORED", False, 2, 0), ("STORED", False, 1, 1), ("FILTERED", False, 0, 0), ("ERROR", False, 0, 0),
        ("STORED", True, 0, 0), ("STORED", False, 3, 0)]
    ehr, pager = Lane("ehr", Receiver(refuses=frozenset({"alert"}))), Lane("pager", Receiver())
    worker_clock = Clock(at(10, 58))
    worker = OutboxWorker(store, [ehr, pager], node="bi-node", clock=worker_clock)
    deliver_due(worker, ehr)  # R1's and R2's readings sent, R2's alert dead
    deliver_due(worker, pager)  # R2's alert sent

    receipt = receive(oru("M-5", "R1", "20240912115959", [("heart_rate", 71)]), ICU, at(11, 59, 59, 999_000), 1500)
    assert receipt.status == "STORED"  # received at 11:59:59.999, its outbox record created at 12:00:00.0005
    set_operator_clock(monkeypatch, naive(at(12, 10)))
    operator_actions.change_alert_state(store, alert_id(store, "R2", "heart_rate"), "resolve", "dr.who")
    worker_clock.now = at(12, 15)
    deliver_due(worker, ehr)  # R1's readings, the resolve notice
    deliver_due(worker, pager)  # the resolve notice
    receipt = receive(oru("M-8", "R2", "20240912132000", [("heart_rate", 150)]), ICU, at(13, 20), 3000)
    assert (receipt.status, receipt.alerts) == ("STORED", 1)  # the pager heard of R2 at 10:30: suppressed
    worker_clock.now = at(13, 25)
    assert len(worker.claim(ehr, 1)) == 1  # R2's readings are being sent; R2's alert waits behind them
    pause(store, "pager", "ops")


def test_integration_throughput_per_route_and_hour(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_traffic(store, monkeypatch)
    ten, eleven, twelve, one = naive(at(10)), naive(at(11)), naive(at(12)), naive(at(13))
    assert view_rows(store, "bi_integration_throughput_hourly", "route, hour") == [
        # route, hour, received, stored, filtered, errored, readings stored, alerts raised,
        # outbox created, sent, dead (of those created in the hour), average ms from receipt to answer
        ("icu", ten, 4, 2, 1, 1, 3, 1, 4, 3, 1, (2500 + 1250 + 1000 + 750) / 4 / 1000),
        ("icu", eleven, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1500 / 1 / 1000),
        ("icu", twelve, 0, 0, 0, 0, 0, 0, 3, 3, 0, None),
        ("icu", one, 1, 1, 0, 0, 1, 1, 3, 0, 0, 3000 / 1 / 1000),
        ("ward", ten, 1, 1, 0, 0, 3, 0, 0, 0, 0, 500 / 1 / 1000),
    ]


def test_outbox_throughput_per_destination_and_record_kind(store: SqlStore,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    seed_traffic(store, monkeypatch)
    ten, twelve, one = naive(at(10)), naive(at(12)), naive(at(13))
    first_pass, second_pass = at(10, 58), at(12, 15)
    assert view_rows(store, "bi_outbox_throughput_hourly", "route, hour, destination, kind") == [
        # route, hour, destination, kind, created, sent, dead, suppressed, waiting, average ms to delivery
        ("icu", ten, "ehr", "alert", 1, 0, 1, 0, 0, None),
        ("icu", ten, "ehr", "observations", 2, 2, 0, 0, 0,
         mean_ms(first_pass - at(10, 0, 0, 2500), first_pass - at(10, 30, 0, 1250))),
        ("icu", ten, "pager", "alert", 1, 1, 0, 0, 0, mean_ms(first_pass - at(10, 30, 0, 1250))),
        ("icu", twelve, "ehr", "alert_resolved", 1, 1, 0, 0, 0, mean_ms(second_pass - at(12, 10))),
        ("icu", twelve, "ehr", "observations", 1, 1, 0, 0, 0, mean_ms(second_pass - at(12, 0, 0, 500))),
        ("icu", twelve, "pager", "alert_resolved", 1, 1, 0, 0, 0, mean_ms(second_pass - at(12, 10))),
        ("icu", one, "ehr", "alert", 1, 0, 0, 0, 1, None),
        ("icu", one, "ehr", "observations", 1, 0, 0, 0, 1, None),  # being sent
        ("icu", one, "pager", "alert", 1, 0, 0, 1, 0, None),
    ]


def test_outbox_status_per_destination(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_traffic(store, monkeypatch)
    oldest_pending = naive(at(13, 20, 0, 3000))  # R2's second alert, queued with its message at 13:20:00.003
    before = datetime.now(UTC).replace(tzinfo=None)
    rows = view_rows(store, "bi_outbox_status", "destination")
    after = datetime.now(UTC).replace(tzinfo=None)
    assert [row[:-1] for row in rows] == [
        # destination, paused, pending, sending, sent, dead, suppressed, oldest pending, (its age)
        ("ehr", 0, 1, 1, 4, 1, 0, oldest_pending),
        ("pager", 1, 0, 0, 2, 0, 1, None),
    ]
    age = rows[0][-1]
    assert (before - oldest_pending) // timedelta(seconds=1) <= age <= (after - oldest_pending) // timedelta(seconds=1)
    assert rows[1][-1] is None


def test_views_give_the_same_rows_on_sqlite_and_postgresql(sqlite_url: str, postgres_url: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Row for row and type for type: what a report bound to one database shows on the other."""
    seen = []
    for url in (sqlite_url, postgres_url):
        store = SqlStore.from_url(url)
        try:
            upgrade(store.engine)
            seed_alerts(store, monkeypatch)
            seed_traffic(store, monkeypatch)
            with store.engine.connect() as conn:
                assert {view: tuple(conn.execute(text(f"SELECT * FROM {view}")).keys()) for view in VIEWS} == VIEWS
            rows = {view: view_rows(store, view, ", ".join(VIEWS[view][:4])) for view in VIEWS
                    if view not in ("bi_device_health", "bi_outbox_status")}  # these two read the clock
            seen.append({view: [[(type(value), value) for value in row] for row in found]
                         for view, found in rows.items()})
        finally:
            store.close()
    assert seen[0] == seen[1]
    assert all(seen[0].values())


# --- the scripts, SQL Server's included ------------------------------------------------------------------

def view_trees(dialect: str) -> dict[str, exp.Create]:
    """CREATE VIEW statements of the dialect's script, by view name."""
    read = {"postgresql": "postgres", "sqlite": "sqlite", "mssql": "tsql"}[dialect]
    script = (SQL_DIR / dialect / SCRIPT).read_text(encoding="utf-8")
    parts = [script] if dialect == "postgresql" else statements(script, dialect)
    found = {}
    for part in parts:
        for tree in sqlglot.parse(part, read=read, error_level=sqlglot.ErrorLevel.RAISE):
            if isinstance(tree, exp.Create) and tree.kind == "VIEW":
                found[tree.this.name] = tree
    return found


def tables_read(view: exp.Create) -> set[str]:
    ctes = {cte.alias for cte in view.expression.find_all(exp.CTE)}
    return {table.name for table in view.expression.find_all(exp.Table)} - ctes


def words(view: exp.Create) -> set[str]:
    """Its string literals (N'x' read as 'x')."""
    return {node.this for node in view.find_all(exp.National, exp.Literal)
            if isinstance(node, exp.National) or node.is_string}


# What only says how a dialect writes a time, a format or an interval.
DIALECT_WORDS = {
    "postgresql": {"UTC", "24"},  # now() AT TIME ZONE 'UTC', INTERVAL '24 hours'
    "sqlite": {"%Y-%m-%d %H:00:00.000000", "%Y-%m-%d %H:%M:%f000", "%s", "now", "-24 hours"},
    "mssql": {"1900-01-01"},  # sqlglot reads YEAR(x) as YEAR(CAST(x AS DATE)) with that default
}


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite", "mssql"])
def test_each_script_creates_the_views_of_the_contract(dialect: str) -> None:
    trees = view_trees(dialect)
    assert {name: tuple(tree.expression.named_selects) for name, tree in trees.items()} == VIEWS


@pytest.mark.parametrize("dialect", ["sqlite", "mssql"])
def test_views_read_the_same_tables_and_words_as_postgresql(dialect: str) -> None:
    postgresql, twin = view_trees("postgresql"), view_trees(dialect)
    for name in VIEWS:
        assert tables_read(twin[name]) == tables_read(postgresql[name]), name
        assert words(twin[name]) - DIALECT_WORDS[dialect] == words(postgresql[name]) - DIALECT_WORDS["postgresql"], \
            name


def test_sql_server_views_are_create_or_alter_alone_in_their_batch() -> None:
    """CREATE VIEW must open its batch, so it cannot sit behind an IF guard: CREATE OR ALTER makes a re-run
    harmless (and keeps the grants). Tables are named with their schema."""
    batches = statements((SQL_DIR / "mssql" / SCRIPT).read_text(encoding="utf-8"), "mssql")
    parsed = [sqlglot.parse(batch, read="tsql", error_level=sqlglot.ErrorLevel.RAISE) for batch in batches]
    creating = [trees for trees in parsed if any(isinstance(t, exp.Create) and t.kind == "VIEW" for t in trees)]
    assert len(creating) == len(VIEWS)
    for trees in creating:
        [tree] = trees
        assert isinstance(tree, exp.Create) and tree.args.get("replace"), tree.sql("tsql")[:80]
        assert tree.this.db == "dbo"
        assert not list(tree.find_all(exp.Command)), tree.this.name
        ctes = {cte.alias for cte in tree.expression.find_all(exp.CTE)}
        tables = [table for table in tree.expression.find_all(exp.Table) if table.name not in ctes]
        assert tables and all(table.db == "dbo" for table in tables), tree.this.name
        assert not list(tree.find_all(exp.Order)), "a view cannot be ordered in T-SQL"


def test_re_running_the_script_is_harmless(store: SqlStore) -> None:
    script = (SQL_DIR / store.dialect / SCRIPT).read_text(encoding="utf-8")
    with store.engine.begin() as conn:
        for statement in statements(script, store.dialect):
            conn.exec_driver_sql(statement)
    with store.engine.connect() as conn:
        for view, columns in VIEWS.items():
            assert tuple(conn.execute(text(f"SELECT * FROM {view}")).keys()) == columns


def test_the_docs_describe_every_column_in_order() -> None:
    documented: dict[str, list[str]] = {}
    current = None
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^### `(bi_\w+)`", line)
        if heading:
            current = heading.group(1)
            documented[current] = []
        elif current and (cell := re.match(r"^\| `(\w+)` \|", line)):
            documented[current].append(cell.group(1))
        elif line.startswith("## "):
            current = None
    assert {view: tuple(columns) for view, columns in documented.items()} == VIEWS


# --- the read-only login of docs/bi-views.md -------------------------------------------------------------

def _docs_block(marker: str) -> str:
    """The fenced SQL block of docs/bi-views.md that follows the line holding ``marker``."""
    docs = DOCS.read_text(encoding="utf-8")
    found = re.search(re.escape(marker) + r".*?```sql\n(.*?)```", docs, re.DOTALL)
    assert found, f"no SQL block after {marker!r} in {DOCS.name}"
    return found.group(1)


@pytest.fixture
def reader(postgres_url: str) -> Iterator[str]:
    """The URL of a login made by the documented PostgreSQL GRANTs (a new role name for the test)."""
    store = SqlStore.from_url(postgres_url)
    upgrade(store.engine)
    store.close()
    parsed = make_url(postgres_url)
    role = f"bi_reader_{uuid.uuid4().hex[:8]}"
    grants = _docs_block("<!-- postgresql-grants -->").replace("vitals_bi", role) \
        .replace("DATABASE vitals ", f'DATABASE "{parsed.database}" ')
    password = re.search(r"PASSWORD '([^']+)'", grants)
    assert password
    admin = psycopg.connect(host=parsed.host, port=parsed.port or 5432, user=parsed.username,
                            password=parsed.password, dbname=parsed.database, autocommit=True)
    with admin:
        try:
            admin.execute(grants)
        except psycopg.errors.InsufficientPrivilege as error:
            pytest.skip(f"the login of the test server cannot create roles: {error}")
        try:
            yield parsed.set(username=role, password=password.group(1)).render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP OWNED BY "{role}"')
            admin.execute(f'DROP ROLE "{role}"')


@pytest.mark.postgres
def test_the_documented_postgresql_login_reads_the_views_and_nothing_else(reader: str) -> None:
    engine = create_engine(reader)
    try:
        with engine.connect() as conn:
            for view, columns in VIEWS.items():
                assert tuple(conn.execute(text(f"SELECT * FROM {view}")).keys()) == columns
        with engine.connect() as conn, pytest.raises(DBAPIError) as refused:
            conn.execute(text("DELETE FROM outbox"))
        assert isinstance(refused.value.orig, psycopg.errors.ReadOnlySqlTransaction)
        for view in VIEWS:  # they group and join: nothing can be written through them
            with engine.connect() as conn, pytest.raises(DBAPIError):
                conn.exec_driver_sql("SET TRANSACTION READ WRITE")
                conn.execute(text(f"DELETE FROM {view}"))
        # The read-only default is the login's own setting, which it may change; the grants are what hold.
        for forbidden in ("SELECT * FROM messages", "SELECT * FROM device_readings", "DELETE FROM outbox",
                          "UPDATE alerts SET state = 'resolved'"):
            with engine.connect() as conn, pytest.raises(ProgrammingError) as refused:
                conn.exec_driver_sql("SET TRANSACTION READ WRITE")
                conn.execute(text(forbidden))
            assert isinstance(refused.value.orig, psycopg.errors.InsufficientPrivilege), forbidden
    finally:
        engine.dispose()
