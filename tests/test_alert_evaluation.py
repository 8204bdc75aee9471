"""Alert evaluation in the database: one table of scenarios, run on SQLite and on a real PostgreSQL.

Each scenario feeds messages through the channel and states the alerts it must leave; a second test
proves that both databases leave identical readings and alerts, row for row.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update

from adapters.sql_store import SqlStore
from adapters.sql_tables import alert_thresholds, alerts, device_readings
from engine.channel import Channel, Inbound, Route
from engine.migrations import upgrade
from tests.messages import FIXTURES, oru

T0 = "20240601100000"


def at(minutes: float) -> str:
    seconds = int(minutes * 60)
    return f"20240601{10 + seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"


# name -> (messages, threshold overrides, expected alerts as (patient, vital, severity, kind, occurrences,
# last_value, state))
SCENARIOS: dict[str, tuple[list[bytes], list[dict], list[tuple]]] = {
    "all good fixtures": (
        [p.read_bytes() for p in sorted(FIXTURES.glob("*.hl7"))], [],
        [("BABY*01", "heart_rate", "warning", "threshold", 1, 140.0, "open"),
         ("FR-77", "temperature", "warning", "threshold", 1, 38.4, "open"),
         ("G-555", "glucose", "critical", "threshold", 1, 33.3, "open"),
         ("PACU-3301", "temperature", "critical", "threshold", 1, 35.0, "open"),  # SN <35.0: beyond the bound
         ("W3-1", "spo2", "warning", "threshold", 1, 93.0, "open"),
         ("W3-2", "heart_rate", "critical", "threshold", 1, 145.0, "open"),
         ("W3-2", "resp_rate", "critical", "threshold", 1, 31.0, "open")]),
    "values on the bounds raise nothing": (
        [oru("B1", "P", T0, [("heart_rate", 120), ("heart_rate", 50), ("spo2", 94), ("temperature", 38.0),
                             ("resp_rate", 10), ("glucose", 10.0)])], [], []),
    "a repeat breach updates the open alert": (
        [oru("R1", "P", at(0), [("heart_rate", 150)]), oru("R2", "P", at(1), [("heart_rate", 155)]),
         oru("R3", "P", at(2), [("heart_rate", 152), ("heart_rate", 151)])], [],
        [("P", "heart_rate", "critical", "threshold", 4, 151.0, "open")]),
    "one alert per vital per message, the most severe": (
        [oru("S1", "P", T0, [("spo2", 93), ("spo2", 89), ("spo2", 92)])], [],
        [("P", "spo2", "critical", "threshold", 1, 89.0, "open")]),
    "warning then critical are two alerts": (
        [oru("W1", "P", at(0), [("heart_rate", 125)]), oru("W2", "P", at(1), [("heart_rate", 145)])], [],
        [("P", "heart_rate", "critical", "threshold", 1, 145.0, "open"),
         ("P", "heart_rate", "warning", "threshold", 1, 125.0, "open")]),
    "an older reading does not replace the last value": (
        [oru("O1", "P", at(5), [("bp_systolic", 185)]), oru("O2", "P", at(1), [("bp_systolic", 190)])], [],
        [("P", "bp_systolic", "critical", "threshold", 2, 185.0, "open")]),
    "patient and device bands override the global ones": (
        [oru("V1", "P-OV", T0, [("heart_rate", 105)]),
         oru("V2", "P-OV", at(1), [("resp_rate", 26)], device="DEV-OV"),
         oru("V3", "P-2", at(1), [("heart_rate", 105)])],
        [{"vital": "heart_rate", "patient_id": "P-OV", "warning_low": 50, "warning_high": 100,
          "critical_low": 40, "critical_high": 130},
         {"vital": "resp_rate", "patient_id": "P-OV", "warning_high": 20, "critical_high": 25},
         {"vital": "resp_rate", "device_id": "DEV-OV", "warning_high": 25, "critical_high": 35}],
        [("P-OV", "heart_rate", "warning", "threshold", 1, 105.0, "open"),
         ("P-OV", "resp_rate", "warning", "threshold", 1, 26.0, "open")]),
    "heart rate up and spo2 down within 10 minutes is a trend": (
        [oru("T1", "P", at(0), [("heart_rate", 80), ("spo2", 98)]),
         oru("T2", "P", at(4), [("heart_rate", 92), ("spo2", 96)]),
         oru("T3", "P", at(8), [("heart_rate", 101), ("spo2", 94.5)]),
         oru("T4", "P", at(9), [("spo2", 93)]),  # SpO2 fell 5 since T1: the trend is complete
         oru("T5", "P", at(9.5), [("spo2", 92.5)])], [],
        [("P", "heart_rate,spo2", "critical", "trend", 2, 21.0, "open"),
         ("P", "spo2", "warning", "threshold", 2, 92.5, "open")]),
    "the same change over more than 10 minutes is no trend": (
        [oru("N1", "P", at(0), [("heart_rate", 80), ("spo2", 98)]),
         oru("N2", "P", at(11), [("heart_rate", 101), ("spo2", 95)])], [], []),
    "heart rate up without spo2 down is no trend": (
        [oru("U1", "P", at(0), [("heart_rate", 80), ("spo2", 97)]),
         oru("U2", "P", at(5), [("heart_rate", 110), ("spo2", 96)])], [], []),
    "trend exactly at the 10 minute bound counts": (
        [oru("E1", "P", at(0), [("heart_rate", 70), ("spo2", 99)]),
         oru("E2", "P", at(10), [("heart_rate", 90), ("spo2", 94)])], [],
        [("P", "heart_rate,spo2", "critical", "trend", 1, 20.0, "open")]),
}


def run(store: SqlStore, scenario: str) -> None:
    messages, overrides, _ = SCENARIOS[scenario]
    with store.engine.begin() as conn:
        for band in overrides:
            conn.execute(insert(alert_thresholds).values(unit="", updated_at=datetime(2024, 1, 1), **band))
    channel = Channel(store)
    for raw in messages:
        receipt = channel.dispatch(raw, Route())
        assert receipt.ack_codes[-1] == "AA", receipt.error


def alert_rows(store: SqlStore) -> list[tuple]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(alerts).order_by(alerts.c.patient_id, alerts.c.vital, alerts.c.severity))
        return [(r.patient_id, r.vital, r.severity, r.kind, r.occurrences, r.last_value, r.state) for r in rows]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_leaves_the_expected_alerts(store: SqlStore, scenario: str) -> None:
    run(store, scenario)
    assert alert_rows(store) == sorted(SCENARIOS[scenario][2])


def test_a_resolved_alert_is_not_reopened_by_a_new_breach(store: SqlStore) -> None:
    channel = Channel(store)
    channel.dispatch(oru("Z1", "P", at(0), [("heart_rate", 150)]), Route())
    with store.engine.begin() as conn:
        conn.execute(update(alerts).values(state="resolved", resolved_by="nurse", resolved_at=datetime.now()))
    channel.dispatch(oru("Z2", "P", at(1), [("heart_rate", 151)]), Route())
    assert sorted(r[-1] for r in alert_rows(store)) == ["open", "resolved"]


def test_alert_text_names_value_and_bound(store: SqlStore) -> None:
    run(store, "heart rate up and spo2 down within 10 minutes is a trend")
    with store.engine.connect() as conn:
        texts = sorted(conn.execute(select(alerts.c.message)).scalars())
    assert texts == ["heart rate rose 21 /min and spo2 fell 5.5 % within 10 minutes",
                     "spo2 92.5 % below warning low 94"]


def snapshot(store: SqlStore) -> dict[str, list[tuple]]:
    """Readings and alerts with ids replaced by their order, and database clock times left out.

    Alerts are compared as a set: the order of their ids is not part of their meaning.
    """
    with store.engine.connect() as conn:
        readings = conn.execute(select(device_readings).order_by(device_readings.c.id)).all()
        order = {r.id: n for n, r in enumerate(readings)}
        alert_list = conn.execute(select(alerts).order_by(alerts.c.id)).all()
    skip = {"id", "message_id", "created_at", "updated_at"}
    return {
        "readings": [tuple(v for k, v in r._mapping.items() if k not in skip) for r in readings],
        "alerts": sorted(tuple(order.get(v, v) if k.endswith("reading_id") else v
                               for k, v in a._mapping.items() if k not in skip) for a in alert_list),
    }


@pytest.mark.postgres
def test_sqlite_and_postgresql_give_identical_readings_and_alerts(sqlite_url: str, postgres_url: str) -> None:
    snapshots = []
    for url in (sqlite_url, postgres_url):
        store = SqlStore.from_url(url)
        upgrade(store.engine)
        for scenario in SCENARIOS:  # one after another in one database: they also interact
            run(store, scenario)
        snapshots.append(snapshot(store))
        store.close()
    assert snapshots[0]["readings"] == snapshots[1]["readings"]
    assert snapshots[0]["alerts"] == snapshots[1]["alerts"]
    assert len(snapshots[0]["alerts"]) > 10


def test_a_batch_is_evaluated_as_its_messages_one_by_one(sqlite_url: str, tmp_path: Path) -> None:
    """Group commit evaluates many messages in one call; the alerts must not depend on the batching."""
    snapshots = []
    for batch_size, url in ((1, sqlite_url), (7, f"sqlite:///{tmp_path / 'batched.db'}")):
        store = SqlStore.from_url(url)
        upgrade(store.engine)
        channel = Channel(store)
        raws = [raw for scenario in SCENARIOS.values() if not scenario[1] for raw in scenario[0]]
        for start in range(0, len(raws), batch_size):
            channel.dispatch_batch([Inbound(raw, Route()) for raw in raws[start:start + batch_size]])
        snapshots.append(snapshot(store))
        store.close()
    assert snapshots[0] == snapshots[1]


def test_a_bound_on_the_band_counts_as_beyond_it(store: SqlStore) -> None:
    """SN '<^35.0' means below 35: on the critical low bound of 35 it is critical, not just a warning."""
    Channel(store).dispatch((FIXTURES / "v27_truncation_char.hl7").read_bytes(), Route())
    with store.engine.connect() as conn:
        alert = conn.execute(select(alerts)).one()
    assert (alert.vital, alert.severity, alert.value) == ("temperature", "critical", 35.0)
    assert alert.message == "temperature <35 Cel below critical low 35"


POSTGRESQL_SQL = Path(__file__).resolve().parent.parent / "sql" / "postgresql"


def function_statement(migration: str, function: str) -> str:
    """The statement a PL/pgSQL function of ``migration`` runs (a test's RETURN EXISTS as a SELECT, or a
    raise_* function's one statement), with ``$1`` for p_message_ids and ``$2`` for now_utc; the function
    must be planned generically, with sequential scans off."""
    body = (POSTGRESQL_SQL / migration).read_text().split(f"CREATE OR REPLACE FUNCTION {function}(", 1)[1]
    settings, body = body.split("AS $$", 1)
    assert "SET plan_cache_mode = force_generic_plan\nSET enable_seqscan = off\n" in settings
    if "RETURN EXISTS (" in body:
        statement = "SELECT EXISTS (" + body.split("RETURN EXISTS (", 1)[1].split("\n    );\nEND", 1)[0] + ")"
    else:
        statement = body.split("BEGIN\n", 1)[1].split(";\n    GET DIAGNOSTICS", 1)[0]
    return statement.replace("p_message_ids", "$1").replace("now_utc", "$2")


def generic_plan_after_growth(postgres_url: str, statement: str) -> str:
    """The plan of ``statement`` made as its function's SET clauses make it (a generic plan, sequential
    scans off) on an empty database, explained again once the tables have grown."""
    store = SqlStore.from_url(postgres_url)
    upgrade(store.engine)
    try:
        with store.engine.connect() as conn:
            conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")  # as the function's SET clauses
            conn.exec_driver_sql("SET enable_seqscan = off")
            conn.exec_driver_sql(f"PREPARE statement(BIGINT[], TIMESTAMP) AS {statement}")
            conn.exec_driver_sql("EXECUTE statement('{1}', now())")  # planned here, on empty tables
            channel = Channel(store)
            for batch in range(40):
                channel.dispatch_batch([
                    Inbound(oru(f"PLAN-{batch}-{n}", f"PAT-{n}", f"202406011{batch % 6}{n:02d}00",
                                [("heart_rate", 70 + n), ("spo2", 97), ("resp_rate", 16)]), Route())
                    for n in range(8)])
            ids = ",".join(str(i) for i in range(305, 313))
            plan = "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN EXECUTE statement('{{{ids}}}', now())"))
            conn.exec_driver_sql("DEALLOCATE statement")
            conn.rollback()
        return plan
    finally:
        store.close()


@pytest.mark.postgres
def test_the_threshold_test_keeps_an_index_plan_made_on_an_empty_database(postgres_url: str) -> None:
    """sql/postgresql/011 plans readings_out_of_band once a connection (a generic plan): the plan made on an
    empty database must still find a batch's readings by message id, and the bands through indexes, once the
    tables have grown (the failure 008 saw with generic plans was a plan that read whole tables)."""
    plan = generic_plan_after_growth(
        postgres_url, function_statement("011_threshold_test_planned_once.sql", "readings_out_of_band"))
    assert "Scan on ix_readings_message" in plan or "Scan using ix_readings_message" in plan, plan
    assert "Index Cond: (message_id = ANY ($1))" in plan, plan
    assert "Seq Scan" not in plan and "ix_readings_patient_time" not in plan, plan


@pytest.mark.postgres
def test_the_trend_test_keeps_an_index_plan_made_on_an_empty_database(postgres_url: str) -> None:
    """sql/postgresql/012 plans trend_possible once a connection: the plan made on an empty database must
    find the batch's readings by message id and read each window as one range of its patient's readings,
    never a patient's whole history (008's generic plan did) nor a whole table."""
    plan = generic_plan_after_growth(
        postgres_url, function_statement("012_trend_test_planned_once.sql", "trend_possible"))
    assert "Index Cond: (message_id = batch.message_id)" in plan, plan
    window = plan.split("ix_readings_patient_time", 1)[1].split("Index Cond: ", 1)[1].split("\n", 1)[0]
    assert "patient_id = " in window and "observed_at >= " in window and "observed_at <= " in window, plan
    assert "Seq Scan" not in plan, plan


@pytest.mark.postgres
def test_the_threshold_statement_keeps_an_index_plan_made_on_an_empty_database(postgres_url: str) -> None:
    """sql/postgresql/013 plans raise_threshold_alerts once a connection: like the threshold test, its plan
    made on an empty database must read the batch's readings by message id, and the bands through indexes."""
    plan = generic_plan_after_growth(
        postgres_url, function_statement("013_evaluation_in_parts.sql", "raise_threshold_alerts"))
    assert "Index Cond: (message_id = ANY ($1))" in plan, plan
    assert plan.count("alert_thresholds") >= 4 and "Seq Scan" not in plan, plan
    assert "ix_readings_patient_time" not in plan and "ix_readings_device" not in plan, plan
