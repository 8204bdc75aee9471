"""The housekeeping jobs on a controllable clock: messages go through the real channel (its clock set to the
test's moment), each job runs at explicit ``now`` values, and every raise has its clear."""
from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel, ValidationError
from sqlalchemy import ColumnElement, Table, func, insert, select, true, update
from sqlalchemy.engine import Row

from adapters.sql_store import SqlStore
from adapters.sql_tables import (
    destinations,
    device_readings,
    device_status,
    incidents,
    job_state,
    messages,
    outbox,
    reconciliation,
)
from engine.channel import Channel, Route
from engine.incidents import change_incident_state
from engine.jobs.outbox_sweep import sweep_outbox
from engine.jobs.reconciliation import reconcile
from engine.jobs.retention import prune_content
from engine.jobs.stale_devices import WATERMARK, check_devices
from engine.outbox_rows import OutboxTarget
from engine.routes.housekeeping import DevicesConfig, RetentionConfig
from tests.messages import oru
from tests.query_plans import full_scan, plans_of

T0 = datetime(2026, 3, 2, 10, 0)  # UTC, as stored
EHR = OutboxTarget("ehr", readings=True, alerts=False)
ICU = Route(name="icu", outbox=(EHR,))
WARD = Route(name="ward")
_control_ids = itertools.count(1)


def send(store: SqlStore, at: datetime, route: Route = ICU, patient: str = "P1", device: str = "MON-1",
         values: Sequence[tuple[str, float]] = (("heart_rate", 72),)) -> int:
    """One ORU through the channel, received and stored at ``at``; its message id."""
    channel = Channel(store, clock=lambda: at.replace(tzinfo=UTC))
    raw = oru(f"C-{next(_control_ids)}", patient, f"{at:%Y%m%d%H%M%S}", list(values), device=device)
    receipt = channel.dispatch(raw, route)
    assert receipt.status == "STORED", receipt.error
    assert receipt.message_id is not None
    return receipt.message_id


def rows_of(store: SqlStore, table: Table, *where: ColumnElement[bool]) -> list[Row]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(table).where(*where).order_by(*table.primary_key.columns)))


def change(store: SqlStore, table: Table, *where: ColumnElement[bool], **values: object) -> None:
    with store.transaction() as tx:
        tx.conn.execute(update(table).where(*where).values(**values))


def active(store: SqlStore, kind: str) -> dict[str, Row]:
    return {row.subject: row for row in rows_of(store, incidents, incidents.c.kind == kind,
                                                incidents.c.state != "resolved")}


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


# --- outbox sweep ------------------------------------------------------------------------------------------

def test_a_lapsed_claim_goes_back_to_pending(store: SqlStore) -> None:
    send(store, T0)
    [row] = rows_of(store, outbox)
    change(store, outbox, outbox.c.id == row.id, state="SENDING", claimed_by="node-a", claimed_until=minutes(1))
    assert sweep_outbox(store, minutes(0.5)).reclaimed == 0  # still claimed: node-a is sending it
    assert rows_of(store, outbox)[0].state == "SENDING"
    result = sweep_outbox(store, minutes(2))
    assert result.reclaimed == 1 and result.noteworthy
    [row] = rows_of(store, outbox)
    assert (row.state, row.claimed_by, row.claimed_until, row.attempts) == ("PENDING", None, None, 0)


def test_dead_letters_raise_an_incident_per_destination_until_none_are_left(store: SqlStore) -> None:
    first, second = send(store, T0), send(store, T0)
    change(store, outbox, outbox.c.message_id.in_([first, second]), state="DEAD", attempts=60)
    result = sweep_outbox(store, minutes(1))
    assert result.dead_letters == {"ehr": 2} and result.raised == ["dead_letters:ehr"]
    assert not sweep_outbox(store, minutes(2)).raised  # still there: the same incident, seen again
    incident = active(store, "dead_letters")["ehr"]
    assert (incident.severity, incident.occurrences, incident.last_seen_at) == ("warning", 2, minutes(2))
    assert incident.summary == "destination ehr: 2 record(s) in the dead letters"
    assert json.loads(incident.details) == {"destination": "ehr", "dead_records": 2}
    change(store, outbox, outbox.c.message_id == first, state="SENT")  # an operator replayed one
    assert not sweep_outbox(store, minutes(3)).cleared
    change(store, outbox, outbox.c.message_id == second, state="SUPPRESSED")  # and gave up on the other
    assert sweep_outbox(store, minutes(4)).cleared == ["dead_letters:ehr"]
    [resolved] = rows_of(store, incidents)
    assert (resolved.state, resolved.resolved_by, resolved.resolved_at) == ("resolved", "system", minutes(4))


def test_a_destination_failing_for_minutes_is_down_until_its_queue_drains(store: SqlStore) -> None:
    send(store, T0)
    assert sweep_outbox(store, minutes(30)).failing == {}  # waiting, but never tried and failed
    change(store, outbox, outbox.c.destination == "ehr", attempts=3, last_error="connection refused")
    assert sweep_outbox(store, minutes(4)).failing == {}  # failing for less than 5 minutes
    result = sweep_outbox(store, minutes(6))
    assert result.failing == {"ehr": 1} and result.raised == ["destination_down:ehr"]
    incident = active(store, "destination_down")["ehr"]
    assert incident.severity == "critical"
    assert incident.summary == "destination ehr: 1 record(s) failing, the oldest waiting 6 min"
    assert json.loads(incident.details)["oldest_created_at"] == "2026-03-02T10:00:00Z"
    change(store, outbox, outbox.c.destination == "ehr", state="SENDING", claimed_until=minutes(8))
    assert sweep_outbox(store, minutes(7)).cleared == []  # a retry in flight is still failing
    change(store, outbox, outbox.c.destination == "ehr", state="SENT", claimed_until=None)
    assert sweep_outbox(store, minutes(9)).cleared == ["destination_down:ehr"]


def test_a_paused_destination_is_not_down(store: SqlStore) -> None:
    send(store, T0)
    change(store, outbox, outbox.c.destination == "ehr", attempts=2)
    assert sweep_outbox(store, minutes(10)).raised == ["destination_down:ehr"]
    with store.transaction() as tx:
        tx.conn.execute(insert(destinations).values(name="ehr", paused=True, changed_at=minutes(10),
                                                    changed_by="ops.kim"))
    assert sweep_outbox(store, minutes(11)).cleared == ["destination_down:ehr"]
    change(store, destinations, destinations.c.name == "ehr", paused=False)
    assert sweep_outbox(store, minutes(12), down_after_minutes=20).failing == {}
    assert sweep_outbox(store, minutes(12)).raised == ["destination_down:ehr"]


def test_an_idle_sweep_changes_nothing(store: SqlStore) -> None:
    result = sweep_outbox(store, T0)
    assert (result.reclaimed, result.dead_letters, result.failing, result.noteworthy) == (0, {}, {}, False)
    assert rows_of(store, incidents) == []


# --- stale devices -----------------------------------------------------------------------------------------

DEVICES = {"icu": DevicesConfig(expected_interval_seconds=300, devices={"MON-FAST": 60, "MON-OFF": 0})}


def test_a_silent_device_goes_offline_once_and_comes_back_with_its_data(store: SqlStore) -> None:
    send(store, T0, patient="P1", device="MON-1")
    result = check_devices(store, DEVICES, minutes(4))
    assert (result.learned, result.went_offline) == (1, [])
    [status] = rows_of(store, device_status)
    assert (status.device_id, status.route, status.patient_id, status.last_seen_at) == ("MON-1", "icu", "P1", T0)
    assert (status.expected_interval_seconds, status.offline_since) == (300, None)

    assert check_devices(store, DEVICES, minutes(6)).went_offline == ["MON-1"]
    incident = active(store, "device_offline")["MON-1"]
    assert (incident.severity, incident.opened_at) == ("warning", minutes(6))
    assert incident.summary == "device MON-1 on route icu: nothing for 6 min (expected every 300 s)"
    assert json.loads(incident.details) == {"device_id": "MON-1", "route": "icu", "expected_interval_seconds": 300,
                                            "last_seen_at": "2026-03-02T10:00:00Z"}
    assert "P1" not in incident.summary + incident.details  # no patient data
    assert check_devices(store, DEVICES, minutes(9)).went_offline == []  # one incident per silence
    assert active(store, "device_offline")["MON-1"].occurrences == 1

    send(store, minutes(10), patient="P1", device="MON-1")
    result = check_devices(store, DEVICES, minutes(10.5))
    assert (result.learned, result.came_back) == (1, ["MON-1"])
    [resolved] = rows_of(store, incidents)
    assert (resolved.state, resolved.resolved_by, resolved.resolved_at) == ("resolved", "system", minutes(10.5))
    assert rows_of(store, device_status)[0].offline_since is None


def test_per_device_intervals_override_the_route_and_zero_is_not_watched(store: SqlStore) -> None:
    for device in ("MON-1", "MON-FAST", "MON-OFF"):
        send(store, T0, device=device)
    send(store, T0, route=WARD, device="WARD-1")  # a route without settings: the 300 s default
    assert check_devices(store, DEVICES, minutes(2)).went_offline == ["MON-FAST"]
    assert check_devices(store, DEVICES, minutes(600)).went_offline == ["MON-1", "WARD-1"]
    assert set(active(store, "device_offline")) == {"MON-1", "MON-FAST", "WARD-1"}
    intervals = {row.device_id: row.expected_interval_seconds for row in rows_of(store, device_status)}
    assert intervals == {"MON-1": 300, "MON-FAST": 60, "MON-OFF": 0, "WARD-1": 300}
    unwatched = {"icu": DevicesConfig(expected_interval_seconds=0)}  # the settings changed: MON-1 is let go
    assert check_devices(store, unwatched, minutes(601)).came_back == ["MON-1", "MON-FAST"]


def test_an_operator_may_resolve_a_silence_and_it_stays_quiet_until_the_device_returns(store: SqlStore) -> None:
    send(store, T0, device="MON-1")
    check_devices(store, DEVICES, minutes(6))
    incident = active(store, "device_offline")["MON-1"]
    change_incident_state(store, incident.id, "resolve", "ops.kim", minutes(7))  # monitor unplugged on purpose
    assert check_devices(store, DEVICES, minutes(30)).went_offline == []
    assert active(store, "device_offline") == {}
    send(store, minutes(40), device="MON-1")
    assert check_devices(store, DEVICES, minutes(41)).came_back == ["MON-1"]
    assert check_devices(store, DEVICES, minutes(46)).went_offline == ["MON-1"]  # a new silence
    assert len(rows_of(store, incidents)) == 2


def test_devices_are_learned_past_the_watermark_in_chunks(store: SqlStore) -> None:
    for minute, device, patient in ((0, "MON-1", "P1"), (1, "MON-2", "P2"), (2, "MON-1", "P3"), (3, "MON-3", "P4")):
        send(store, minutes(minute), device=device, patient=patient, values=[("heart_rate", 70), ("spo2", 97)])
    result = check_devices(store, DEVICES, minutes(4), chunk_ids=3)
    with store.engine.connect() as conn:
        newest = conn.execute(select(func.max(device_readings.c.id))).scalar_one()
        assert conn.execute(select(job_state.c.value).where(job_state.c.name == WATERMARK)).scalar_one() == str(newest)
    assert result.watermark == newest
    seen = {row.device_id: (row.patient_id, row.last_seen_at) for row in rows_of(store, device_status)}
    assert seen == {"MON-1": ("P3", minutes(2)), "MON-2": ("P2", minutes(1)), "MON-3": ("P4", minutes(3))}
    again = check_devices(store, DEVICES, minutes(4.5), chunk_ids=3)
    assert (again.learned, again.watermark) == (0, newest)  # the overlap re-read moves nothing back


def test_a_first_run_looks_back_only_so_far(store: SqlStore) -> None:
    send(store, T0, device="MON-OLD", values=[("heart_rate", 70), ("spo2", 97)])
    send(store, minutes(1), device="MON-NEW", values=[("heart_rate", 70), ("spo2", 97)])
    check_devices(store, DEVICES, minutes(2), first_run_ids=2)
    assert [row.device_id for row in rows_of(store, device_status)] == ["MON-NEW"]


# --- reconciliation ----------------------------------------------------------------------------------------

def counts(store: SqlStore, route: str = "icu", hour: datetime = T0) -> tuple[int, ...]:
    [row] = rows_of(store, reconciliation, reconciliation.c.route == route, reconciliation.c.hour_start == hour)
    return (row.received, row.stored, row.forwarded, row.confirmed, row.missing, row.delayed, row.duplicated)


ROUTES = {"icu": ["ehr"]}


def test_an_hour_that_adds_up_raises_nothing(store: SqlStore) -> None:
    for minute in (5, 10, 15):
        send(store, minutes(minute))
    channel = Channel(store, clock=lambda: minutes(20).replace(tzinfo=UTC))
    assert channel.dispatch(b"not HL7 at all", ICU).status == "ERROR"  # received, not stored
    change(store, outbox, outbox.c.state == "PENDING", state="SENT")
    result = reconcile(store, ROUTES, minutes(30))
    assert counts(store) == (4, 3, 3, 3, 0, 0, 0)
    assert result.raised == [] and rows_of(store, incidents) == []
    assert result.hours == [T0 - timedelta(hours=h) for h in (3, 2, 1, 0)]
    reconcile(store, ROUTES, minutes(40))
    assert len(rows_of(store, reconciliation)) == 1  # upserted, one row per route and hour
    assert rows_of(store, reconciliation)[0].computed_at == minutes(40)


def test_records_not_confirmed_after_the_delay_are_a_mismatch_until_sent(store: SqlStore) -> None:
    first, second = send(store, minutes(5)), send(store, minutes(10))
    assert reconcile(store, ROUTES, minutes(12)).raised == []  # pending, but not late yet
    result = reconcile(store, ROUTES, minutes(21))
    assert counts(store) == (2, 2, 2, 0, 0, 1, 0)
    assert result.raised == ["icu/2026-03-02T10:00Z"]
    incident = active(store, "reconciliation_mismatch")["icu/2026-03-02T10:00Z"]
    assert incident.summary == "route icu, hour 2026-03-02 10:00 UTC: 0 missing, 1 delayed, 0 duplicated " \
                               "observation record(s)"
    details = json.loads(incident.details)
    assert details["delayed_message_ids"] == [first] and details["hour_start"] == "2026-03-02T10:00:00Z"
    change(store, outbox, outbox.c.message_id == first, state="DEAD")  # dead letters are not confirmed either
    reconcile(store, ROUTES, minutes(30))
    assert counts(store)[5] == 2
    change(store, outbox, outbox.c.message_id.in_([first, second]), state="SENT")
    assert reconcile(store, ROUTES, minutes(35)).cleared == ["icu/2026-03-02T10:00Z"]
    assert counts(store) == (2, 2, 2, 2, 0, 0, 0)


def test_a_stored_message_without_its_outbox_record_is_missing(store: SqlStore) -> None:
    send(store, minutes(5))
    lost = send(store, minutes(6), route=Route(name="icu"))  # a node whose route had no EHR destination yet
    send(store, minutes(7), route=WARD)  # the ward has no outbox destination: nothing can be missing
    change(store, outbox, outbox.c.state == "PENDING", state="SENT")
    result = reconcile(store, ROUTES, minutes(20))
    assert counts(store) == (2, 2, 1, 1, 1, 0, 0)
    assert counts(store, "ward") == (1, 1, 0, 0, 0, 0, 0)
    assert result.raised == ["icu/2026-03-02T10:00Z"]
    assert json.loads(active(store, "reconciliation_mismatch")["icu/2026-03-02T10:00Z"].details)[
        "missing_message_ids"] == [lost]
    assert reconcile(store, {"icu": []}, minutes(25)).cleared == ["icu/2026-03-02T10:00Z"]  # the EHR left the route


def test_messages_stored_before_a_destination_was_enabled_are_not_missing(store: SqlStore) -> None:
    send(store, minutes(5), route=Route(name="icu"))  # before the EHR destination was added to the route
    send(store, minutes(6))
    change(store, outbox, outbox.c.state == "PENDING", state="SENT")
    result = reconcile(store, ROUTES, minutes(20))
    assert counts(store) == (2, 2, 1, 1, 0, 0, 0) and result.raised == []


def test_two_records_of_one_message_and_patient_for_one_destination_are_duplicated(store: SqlStore) -> None:
    message_id = send(store, minutes(5))
    [row] = rows_of(store, outbox)
    copy = {c.name: getattr(row, c.name) for c in outbox.columns if c.name != "id"}
    with store.transaction() as tx:
        tx.conn.execute(insert(outbox).values({**copy, "idempotency_key": "obs:copy"}))
        tx.conn.execute(insert(outbox).values({**copy, "idempotency_key": "obs:other", "destination": "lab"}))
    change(store, outbox, outbox.c.message_id == message_id, state="SENT")
    assert reconcile(store, ROUTES, minutes(20)).raised == ["icu/2026-03-02T10:00Z"]
    assert counts(store) == (1, 1, 3, 3, 0, 0, 1)
    details = json.loads(active(store, "reconciliation_mismatch")["icu/2026-03-02T10:00Z"].details)
    assert details["duplicated_message_ids"] == [message_id]
    with store.transaction() as tx:
        tx.conn.execute(outbox.delete().where(outbox.c.idempotency_key == "obs:copy"))
    assert reconcile(store, ROUTES, minutes(25)).cleared == ["icu/2026-03-02T10:00Z"]


def test_an_unresolved_hour_is_checked_again_after_it_left_the_window(store: SqlStore) -> None:
    message_id = send(store, minutes(5))
    reconcile(store, ROUTES, minutes(30))
    assert set(active(store, "reconciliation_mismatch")) == {"icu/2026-03-02T10:00Z"}
    change(store, outbox, outbox.c.message_id == message_id, state="SENT")
    later = T0 + timedelta(hours=6)
    result = reconcile(store, ROUTES, later, lookback_hours=2)
    assert T0 in result.hours and result.cleared == ["icu/2026-03-02T10:00Z"]


# --- retention ---------------------------------------------------------------------------------------------

def raw_kept(store: SqlStore) -> dict[int, bool]:
    return {row.id: row.raw is not None for row in rows_of(store, messages)}


def test_raw_content_goes_after_the_routes_age_and_everything_else_stays(store: SqlStore) -> None:
    icu = [send(store, T0), send(store, minutes(60 * 24 * 3))]
    ward = send(store, T0, route=WARD)
    other = send(store, T0, route=Route(name="misc"))
    readings_before = len(rows_of(store, device_readings))
    settings = {"icu": 7, "ward": 0}
    result = prune_content(store, settings, T0 + timedelta(days=8), pause_seconds=0)
    assert result.pruned == {"icu": 1, "*": 0} and result.noteworthy
    assert raw_kept(store) == {icu[0]: False, icu[1]: True, ward: True, other: True}
    result = prune_content(store, settings, T0 + timedelta(days=31), pause_seconds=0)
    assert result.pruned == {"icu": 1, "*": 1}
    assert raw_kept(store) == {icu[0]: False, icu[1]: False, ward: True, other: False}  # 0 keeps forever
    assert len(rows_of(store, device_readings)) == readings_before  # readings, message rows, outbox kept
    assert len(rows_of(store, messages)) == 4 and len(rows_of(store, outbox)) == 2
    assert all(row.content_hash and row.ack for row in rows_of(store, messages))  # the audit trail


def test_pruning_goes_in_batches_and_resumes_from_its_watermark(store: SqlStore) -> None:
    sent = [send(store, T0 + timedelta(hours=n)) for n in range(5)]
    later = T0 + timedelta(days=40)
    assert prune_content(store, {}, later, batch_size=2, max_batches=1, pause_seconds=0).pruned == {"*": 2}
    assert [raw_kept(store)[i] for i in sent] == [False, False, True, True, True]
    with store.engine.connect() as conn:
        mark = conn.execute(select(job_state.c.value).where(job_state.c.name == "retention.*")).scalar_one()
    assert mark == str(T0 + timedelta(hours=1))
    assert prune_content(store, {}, later, batch_size=2, pause_seconds=0).pruned == {"*": 3}
    assert not any(raw_kept(store).values())
    assert prune_content(store, {}, later + timedelta(hours=1), pause_seconds=0).pruned == {"*": 0}


def payload_pruned(store: SqlStore) -> dict[int, bool]:
    """Message id -> whether its outbox row's payload was emptied (checked to be all or nothing)."""
    found = {}
    for row in rows_of(store, outbox):
        assert (row.payload == "") == (row.payload_pruned_at is not None)
        found[row.message_id] = row.payload == ""
    return found


def test_delivered_payloads_go_after_the_routes_age_and_undelivered_ones_stay(store: SqlStore) -> None:
    states = ["SENT", "SUPPRESSED", "DEAD", "PENDING", "SENDING"]
    old = {state: send(store, T0) for state in states}
    young = send(store, T0 + timedelta(days=3))
    ward = send(store, T0, route=Route(name="ward", outbox=(EHR,)))
    for state, message_id in [*old.items(), ("SENT", young), ("SENT", ward)]:
        change(store, outbox, outbox.c.message_id == message_id, state=state)
    moment = T0 + timedelta(days=8)
    result = prune_content(store, {"icu": 7, "ward": 0}, moment, pause_seconds=0)
    assert result.payloads == {"icu": 2} and result.noteworthy
    assert payload_pruned(store) == {old["SENT"]: True, old["SUPPRESSED"]: True, old["DEAD"]: False,
                                     old["PENDING"]: False, old["SENDING"]: False, young: False, ward: False}
    assert {row.payload_pruned_at for row in rows_of(store, outbox) if row.payload == ""} == {moment}
    assert len(rows_of(store, outbox)) == 7  # the rows stay: destination, state, attempts, keys
    assert prune_content(store, {"icu": 7, "ward": 0}, moment, pause_seconds=0).payloads == {"icu": 0}
    assert prune_content(store, {"icu": 7}, T0 + timedelta(days=31), pause_seconds=0).payloads == {
        "icu": 1, "ward": 1}  # ward: no setting now, so the default 30 days


def test_payload_pruning_goes_in_batches(store: SqlStore) -> None:
    sent = [send(store, T0 + timedelta(hours=n)) for n in range(5)]
    change(store, outbox, outbox.c.message_id.in_(sent), state="SENT")
    later = T0 + timedelta(days=40)
    assert prune_content(store, {}, later, batch_size=2, max_batches=1, pause_seconds=0).payloads == {"icu": 2}
    assert [payload_pruned(store)[i] for i in sent] == [True, True, False, False, False]  # oldest first
    assert prune_content(store, {}, later, batch_size=2, pause_seconds=0).payloads == {"icu": 3}
    assert all(payload_pruned(store).values())
    assert prune_content(store, {}, later, pause_seconds=0).payloads == {}  # none kept: no route to look at


def test_payload_pruning_reads_only_the_rows_it_may_prune(store: SqlStore) -> None:
    change(store, outbox, outbox.c.message_id == send(store, T0), state="SENT")
    plans = plans_of(store, lambda: prune_content(store, {}, T0 + timedelta(days=40), pause_seconds=0), "outbox")
    assert len(plans) == 3  # the routes (two seeks: "icu", then none after it), the route's oldest rows
    for statement, plan in plans:
        assert "ix_outbox_payload_kept" in plan and not full_scan(plan, "outbox"), (statement, plan)


def test_retention_zero_everywhere_keeps_everything(store: SqlStore) -> None:
    send(store, T0)
    change(store, outbox, true(), state="SENT")
    result = prune_content(store, {"icu": 0}, T0 + timedelta(days=999), default_days=0)
    assert result.pruned == {} and result.payloads == {} and not result.noteworthy
    assert all(raw_kept(store).values()) and not any(payload_pruned(store).values())


# --- the route settings ------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", [DevicesConfig, RetentionConfig], ids=lambda m: m.__name__)
def test_every_setting_has_a_description_and_an_example(model: type[BaseModel]) -> None:
    assert model.model_config.get("extra") == "forbid"
    for name, info in model.model_fields.items():
        assert info.description, f"{model.__name__}.{name} has no description"
        assert info.examples, f"{model.__name__}.{name} has no example"
        model.model_validate({name: info.examples[0]})


def test_route_settings_have_defaults_and_refuse_nonsense() -> None:
    assert DevicesConfig().interval_for("MON-1") == 300 and RetentionConfig().raw_content_days == 30
    watch = DevicesConfig.model_validate({"expected_interval_seconds": 120, "devices": {"MON-7": 60, 12345: 0}})
    assert (watch.interval_for("MON-7"), watch.interval_for("12345"), watch.interval_for("X")) == (60, 0, 120)
    for bad in ({"expected_interval_seconds": -1}, {"devices": {"MON-1": -5}}, {"devices": {"": 60}},
                {"interval": 60}):
        with pytest.raises(ValidationError):
            DevicesConfig.model_validate(bad)
    with pytest.raises(ValidationError):
        RetentionConfig.model_validate({"raw_content_days": -1})
