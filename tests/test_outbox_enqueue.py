"""The store transaction writes the outbox: one row per record each destination must get, or none at all."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text

from adapters.sql_store import SqlStore
from adapters.sql_tables import outbox
from engine.channel import Channel, Inbound, Route
from engine.outbox_rows import OutboxTarget
from tests.messages import oru

EHR = OutboxTarget("ehr", readings=True, alerts=True)
PAGER = OutboxTarget("pager", readings=False, alerts=True, severities=frozenset({"critical"}), suppress_seconds=900)
ROUTE = Route(name="icu", outbox=(EHR, PAGER))


def rows(store: SqlStore) -> list:
    with store.engine.connect() as conn:
        return list(conn.execute(select(outbox).order_by(outbox.c.id)))


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_a_stored_message_queues_its_readings_for_each_destination_taking_them(store: SqlStore) -> None:
    receipt = Channel(store).dispatch(oru("E-1", "P1", "20261121100000", [("heart_rate", 72), ("spo2", 98)],
                                          device="MON-1"), ROUTE)
    [row] = rows(store)
    assert (row.destination, row.route, row.kind, row.state, row.attempts) == ("ehr", "icu", "observations",
                                                                              "PENDING", 0)
    assert (row.idempotency_key, row.message_id, row.patient_id) == (f"obs:{receipt.message_id}:1",
                                                                     receipt.message_id, "P1")
    payload = json.loads(row.payload)
    assert payload["patient_id"] == "P1" and payload["message_id"] == receipt.message_id
    assert [(r["vital"], r["value"], r["unit"], r["observed_at"], r["device_id"]) for r in payload["readings"]] == [
        ("heart_rate", 72.0, "/min", "2026-11-21T10:00:00Z", "MON-1"), ("spo2", 98.0, "%", "2026-11-21T10:00:00Z",
                                                                        "MON-1")]


def test_a_raised_alert_is_queued_for_destinations_taking_its_severity(store: SqlStore) -> None:
    channel = Channel(store)
    channel.dispatch(oru("E-1", "P1", "20261121100000", [("heart_rate", 130)]), ROUTE)  # warning: EHR only
    channel.dispatch(oru("E-2", "P2", "20261121100000", [("heart_rate", 150)]), ROUTE)  # critical: EHR and pager
    queued = [(r.destination, r.kind, r.patient_id, r.state) for r in rows(store)]
    assert queued == [("ehr", "observations", "P1", "PENDING"), ("ehr", "alert", "P1", "PENDING"),
                      ("ehr", "observations", "P2", "PENDING"), ("ehr", "alert", "P2", "PENDING"),
                      ("pager", "alert", "P2", "PENDING")]
    alert = json.loads(rows(store)[-1].payload)
    assert (alert["severity"], alert["vital"], alert["state"], alert["value"]) == ("critical", "heart_rate", "open",
                                                                                  150.0)
    assert rows(store)[-1].idempotency_key == f"alert:{alert['alert_id']}"


def test_a_repeat_breach_updates_the_alert_and_queues_nothing_new(store: SqlStore) -> None:
    channel = Channel(store)
    channel.dispatch(oru("E-1", "P1", "20261121100000", [("heart_rate", 150)]), ROUTE)
    channel.dispatch(oru("E-2", "P1", "20261121100100", [("heart_rate", 152)]), ROUTE)
    assert [(r.destination, r.kind) for r in rows(store)] == [
        ("ehr", "observations"), ("ehr", "alert"), ("pager", "alert"), ("ehr", "observations")]


def test_a_new_alert_within_the_suppression_window_is_kept_but_not_sent(store: SqlStore) -> None:
    clock = Clock()
    channel = Channel(store, clock=clock)
    channel.dispatch(oru("E-1", "P1", "20261121100000", [("heart_rate", 150)]), ROUTE)
    with store.engine.begin() as conn:  # the nurse resolves it; the patient breaches again soon after
        conn.execute(text("UPDATE alerts SET state = 'resolved'"))
    clock.now += timedelta(minutes=5)
    channel.dispatch(oru("E-2", "P1", "20261121100500", [("heart_rate", 151)]), ROUTE)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alerts SET state = 'resolved'"))
    clock.now += timedelta(minutes=20)
    channel.dispatch(oru("E-3", "P1", "20261121102500", [("heart_rate", 152)]), ROUTE)
    pager = [(r.kind, r.state) for r in rows(store) if r.destination == "pager"]
    assert pager == [("alert", "PENDING"), ("alert", "SUPPRESSED"), ("alert", "PENDING")]
    ehr_alerts = [r.state for r in rows(store) if r.destination == "ehr" and r.kind == "alert"]
    assert ehr_alerts == ["PENDING", "PENDING", "PENDING"]  # the EHR gets every alert


def test_one_row_per_patient_of_a_message(store: SqlStore) -> None:
    first = oru("E-1", "P1", "20261121100000", [("heart_rate", 72)])
    second = b"PID|||P2^^^HOSP^MR\rOBR|1||||||20261121100000\rOBX|1|NM|8867-4^Heart rate^LN||80|/min|||||F\r"
    receipt = Channel(store).dispatch(first + second, Route(name="icu", outbox=(EHR,)))
    assert [(r.patient_id, r.idempotency_key) for r in rows(store)] == [
        ("P1", f"obs:{receipt.message_id}:1"), ("P2", f"obs:{receipt.message_id}:2")]


def test_nothing_is_queued_for_what_is_not_stored_or_a_route_without_outbox(store: SqlStore) -> None:
    channel = Channel(store)
    channel.dispatch(oru("E-1", "P1", "20261121100000", [("heart_rate", 150)]), Route(name="plain"))
    channel.dispatch(oru("E-1", "P1", "20261121100000", [("heart_rate", 150)]), ROUTE)  # exact resend
    channel.dispatch(b"MSH|^~\\&|X|Y|||20261121||ORU^R01|E-9|P|2.5\rPID|||P1\rOBX|1|NM|bogus||1|x|||||F\r", ROUTE)
    assert rows(store) == []


def test_the_writer_is_told_after_the_commit_that_queued_rows(store: SqlStore) -> None:
    told: list[int] = []
    channel = Channel(store, outbox_written=lambda: told.append(len(rows(store))))
    channel.dispatch_batch([Inbound(oru("E-1", "P1", "20261121100000", [("heart_rate", 72)]), ROUTE),
                            Inbound(oru("E-2", "P2", "20261121100000", [("heart_rate", 72)]), ROUTE)])
    channel.dispatch(oru("E-3", "P3", "20261121100000", [("heart_rate", 72)]), Route(name="plain"))
    assert told == [2]  # once, after the commit (the rows are visible), and not for the plain route


def test_resolving_an_alert_tells_every_destination_that_was_told_of_it(store: SqlStore) -> None:
    from engine.operator_actions import change_alert_state
    channel = Channel(store)
    channel.dispatch(oru("E-1", "P1", "20261121100000", [("heart_rate", 150)]), ROUTE)
    with store.engine.connect() as conn:
        alert_id = conn.execute(select(outbox.c.alert_id).where(outbox.c.kind == "alert")).scalars().first()
    change_alert_state(store, alert_id, "acknowledge", "nurse.lee")  # no notice for an acknowledgement
    change_alert_state(store, alert_id, "resolve", "nurse.lee")
    notices = [(r.destination, r.kind, r.state, r.idempotency_key) for r in rows(store) if r.kind == "alert_resolved"]
    assert notices == [("ehr", "alert_resolved", "PENDING", f"alert_resolved:{alert_id}"),
                       ("pager", "alert_resolved", "PENDING", f"alert_resolved:{alert_id}")]
    payload = json.loads(rows(store)[-1].payload)
    assert (payload["state"], payload["resolved_by"], payload["route"]) == ("resolved", "nurse.lee", "icu")


def test_a_suppressed_alert_resolves_without_a_notice(store: SqlStore) -> None:
    from engine.operator_actions import change_alert_state
    clock = Clock()
    channel = Channel(store, clock=clock)
    channel.dispatch(oru("E-1", "P1", "20261121100000", [("heart_rate", 150)]), ROUTE)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alerts SET state = 'resolved'"))
    clock.now += timedelta(minutes=1)
    channel.dispatch(oru("E-2", "P1", "20261121100100", [("heart_rate", 150)]), ROUTE)
    with store.engine.connect() as conn:
        second = conn.execute(select(outbox.c.alert_id).where(outbox.c.state == "SUPPRESSED")).scalar_one()
    change_alert_state(store, second, "resolve", "nurse.lee")
    assert [r.destination for r in rows(store) if r.kind == "alert_resolved"] == ["ehr"]


def test_an_escalation_to_critical_is_never_suppressed(store: SqlStore) -> None:
    pager = OutboxTarget("pager", readings=False, alerts=True, severities=frozenset({"warning", "critical"}),
                         suppress_seconds=900)
    route = Route(name="icu", outbox=(pager,))
    clock = Clock()
    channel = Channel(store, clock=clock)
    channel.dispatch(oru("S-1", "P1", "20261121100000", [("heart_rate", 150)]), route)  # critical
    channel.dispatch(oru("S-2", "P2", "20261121100000", [("heart_rate", 125)]), route)  # warning
    clock.now += timedelta(minutes=2)
    channel.dispatch(oru("S-3", "P2", "20261121100200", [("heart_rate", 150)]), route)  # P2 escalates
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alerts SET state = 'resolved'"))
    clock.now += timedelta(minutes=2)
    channel.dispatch(oru("S-4", "P1", "20261121100400", [("heart_rate", 125)]), route)  # P1 eases: warning
    assert [(r.patient_id, r.state) for r in rows(store)] == [
        ("P1", "PENDING"), ("P2", "PENDING"), ("P2", "PENDING"), ("P1", "SUPPRESSED")]
