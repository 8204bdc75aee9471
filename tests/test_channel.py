"""The channel path on SQLite and on a real PostgreSQL: store before ACK, duplicates, failures."""
import json

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from adapters.sql_store import SqlStore, StoreTransaction
from adapters.sql_tables import alerts, device_readings, messages
from engine.channel import Channel, Inbound, Route
from tests.messages import FIXTURES, fixture, oru

BAD = json.loads((FIXTURES / "bad" / "expected.json").read_text())


def count(store: SqlStore, table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_a_message_is_stored_with_its_readings_and_ack(store: SqlStore) -> None:
    receipt = Channel(store).dispatch(fixture("loinc_vitals_v251.hl7"), Route(), peer="test")
    assert receipt.ack_codes == ["AA"] and receipt.status == "STORED" and receipt.readings == 7
    with store.engine.connect() as conn:
        row = conn.execute(select(messages).where(messages.c.id == receipt.message_id)).one()
        readings = conn.execute(select(device_readings)).all()
    assert (row.status, row.ack_code, row.control_id, row.reading_count) == ("STORED", "AA", "VC-0001", 7)
    assert row.ack == receipt.acks[0] and row.raw.startswith("MSH|") and row.peer == "test"
    assert row.processed_at >= row.received_at
    assert {r.vital for r in readings} == {"heart_rate", "spo2", "temperature", "resp_rate", "bp_systolic",
                                           "bp_diastolic", "bp_mean"}
    assert all(r.message_id == receipt.message_id for r in readings)


def test_an_exact_resend_gets_the_original_answer_and_stores_nothing(store: SqlStore) -> None:
    channel = Channel(store)
    first = channel.dispatch(fixture("multi_patient_v24.hl7"), Route())
    again = channel.dispatch(fixture("multi_patient_v24.hl7"), Route())
    assert again.duplicate and again.acks == first.acks and again.message_id == first.message_id
    assert (count(store, messages), count(store, device_readings), count(store, alerts)) == (1, 4, 3)


def test_same_control_id_with_other_content_is_ae_and_kept_for_audit(store: SqlStore) -> None:
    channel = Channel(store)
    first = channel.dispatch(oru("K-1", "P1", "20240101100000", [("heart_rate", 70)]), Route())
    other = channel.dispatch(oru("K-1", "P1", "20240101100000", [("heart_rate", 75)]), Route())
    assert other.ack_codes == ["AE"] and "|205^Duplicate key identifier^HL70357|" in other.acks[0]
    with store.engine.connect() as conn:
        audit = conn.execute(select(messages).where(messages.c.id == other.message_id)).one()
    assert (audit.status, audit.duplicate_of, audit.reading_count) == ("ERROR", first.message_id, 0)
    assert count(store, device_readings) == 1


def test_a_rejected_message_may_be_corrected_under_the_same_control_id(store: SqlStore) -> None:
    channel = Channel(store)
    wrong = channel.dispatch(oru("K-2", "P1", "20240101100000", [("heart_rate", "fast")]), Route())
    again = channel.dispatch(oru("K-2", "P1", "20240101100000", [("heart_rate", "fast")]), Route())
    fixed = channel.dispatch(oru("K-2", "P1", "20240101100000", [("heart_rate", 70)]), Route())
    assert wrong.ack_codes == ["AE"] and again.duplicate and again.acks == wrong.acks
    assert fixed.ack_codes == ["AA"] and count(store, messages) == 2


@pytest.mark.parametrize("name", sorted(k for k in BAD if not k.startswith("_")))
def test_bad_messages_are_kept_with_the_reason(store: SqlStore, name: str) -> None:
    receipt = Channel(store).dispatch((FIXTURES / "bad" / name).read_bytes(), Route())
    expected = BAD[name]["ack"]
    assert receipt.ack_codes == ([expected] if expected else [])
    with store.engine.connect() as conn:
        row = conn.execute(select(messages).where(messages.c.id == receipt.message_id)).one()
    assert row.status == ("FILTERED" if name == "ack_message.hl7" else "ERROR")
    assert row.error and row.raw
    assert count(store, device_readings) == 0
    if expected:
        code = BAD[name]["problems"][0][0]
        assert f"|{code}^" in receipt.acks[0] or f"^{code}&" in receipt.acks[0]


def test_enhanced_mode_gets_accept_then_application_ack(store: SqlStore) -> None:
    receipt = Channel(store).dispatch(fixture("enhanced_al_al.hl7"), Route())
    assert receipt.ack_codes == ["CA", "AA"]
    with store.engine.connect() as conn:
        stored = conn.execute(select(messages.c.ack, messages.c.ack_code)).one()
    assert stored.ack_code == "AA" and stored.ack.count("MSA|") == 2


def test_a_failure_inside_the_transaction_stores_nothing_and_answers_ar_207(store: SqlStore) -> None:
    # Break alert evaluation (every batch with readings reads the bands): the readings were already inserted
    # in the same transaction.
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE alert_thresholds RENAME TO alert_thresholds_gone"))
    receipt = Channel(store).dispatch(fixture("pcd01_nibp.hl7"), Route())
    assert receipt.message_id is None and receipt.ack_codes == ["AR"]
    assert "|207^Application internal error^HL70357|" in receipt.acks[0]
    assert (count(store, messages), count(store, device_readings)) == (0, 0)


@pytest.mark.timeout(60)  # the answer must come, not hang: connect_timeout and pool_timeout bound it
def test_database_unreachable_answers_ar_207() -> None:
    store = SqlStore.from_url("postgresql+psycopg://vitals@127.0.0.1:9/none")  # nothing listens on port 9
    receipt = Channel(store).dispatch(fixture("loinc_vitals_v251.hl7"), Route())
    assert receipt.ack_codes == ["AR"] and "207" in receipt.acks[0]
    store.close()


def test_a_sender_the_route_does_not_accept_is_filtered_with_ar(store: SqlStore) -> None:
    route = Route(sending_applications=frozenset({"MONITOR"}))
    receipt = Channel(store).dispatch(oru("F-1", "P1", "20240101100000", [("heart_rate", 150)]), route)
    assert receipt.status == "FILTERED" and receipt.ack_codes == ["AR"]
    assert "sending application TESTMON is not accepted" in receipt.acks[0]
    assert (count(store, device_readings), count(store, alerts)) == (0, 0)
    accepted = Channel(store).dispatch(oru("F-2", "P1", "20240101100000", [("heart_rate", 70)], sender="MONITOR"),
                                       route)
    assert accepted.ack_codes == ["AA"]


def test_a_strict_route_validates_conformance_through_hl7apy(store: SqlStore) -> None:
    strict = Route(strict=True)
    missing_obr4 = Channel(store).dispatch(fixture("enhanced_al_al.hl7"), strict)
    assert missing_obr4.ack_codes == ["CE"] and "|101^Required field missing^HL70357|" in missing_obr4.acks[0]
    assert Channel(store).dispatch(fixture("loinc_vitals_v251.hl7"), strict).ack_codes == ["AA"]


def test_an_ack_received_twice_is_kept_twice_and_never_answered(store: SqlStore) -> None:
    channel = Channel(store)
    first = channel.dispatch(fixture("bad/ack_message.hl7"), Route())
    again = channel.dispatch(fixture("bad/ack_message.hl7"), Route())
    assert (first.acks, again.acks) == ((), ())
    assert first.status == again.status == "FILTERED"


def test_a_batch_shares_one_transaction_and_answers_each_message(store: SqlStore) -> None:
    first = oru("G-1", "P1", "20240101100000", [("heart_rate", 150)])
    batch = [Inbound(first, Route()), Inbound(oru("G-1", "P1", "20240101100000", [("heart_rate", 90)]), Route()),
             Inbound(first, Route()), Inbound(oru("G-2", "P2", "20240101100000", [("spo2", "x")]), Route()),
             Inbound(oru("G-3", "P1", "20240101100100", [("heart_rate", 151)]), Route())]
    receipts = Channel(store).dispatch_batch(batch)
    assert [r.ack_codes for r in receipts] == [["AA"], ["AE"], ["AA"], ["AE"], ["AA"]]
    assert receipts[2].duplicate and receipts[2].acks == receipts[0].acks
    with store.engine.connect() as conn:
        alert = conn.execute(select(alerts)).one()
    assert (alert.occurrences, alert.last_value) == (2, 151.0)


def test_when_the_shared_transaction_fails_each_message_is_stored_alone(
        store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = StoreTransaction.store_messages

    def flaky(self: StoreTransaction, rows: list[dict[str, object]], *args: object) -> tuple[list[int], int]:
        calls.append(rows)
        if len(calls) == 1:  # the shared transaction
            raise OperationalError("SELECT store_messages", {}, Exception("deadlock detected"))
        return real(self, rows, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(StoreTransaction, "store_messages", flaky)
    batch = [Inbound(oru(f"H-{n}", "P1", f"2024010110000{n}", [("heart_rate", 70)]), Route()) for n in range(3)]
    receipts = Channel(store).dispatch_batch(batch)
    assert [r.ack_codes for r in receipts] == [["AA"], ["AA"], ["AA"]]
    assert count(store, messages) == 3 and [len(c) for c in calls] == [3, 1, 1, 1]


def test_message_content_stays_out_of_logs_unless_the_route_opts_in(
        store: SqlStore, caplog: pytest.LogCaptureFixture) -> None:
    bad = fixture("bad/nonnumeric_value.hl7").replace(b"PID|||B-1", b"PID|||B-1||Secretname^Anna")
    caplog.set_level("DEBUG")
    Channel(store).dispatch(bad, Route())
    logged = " ".join(str(vars(record)) for record in caplog.records)
    assert "Secretname" not in logged and "message not stored" in logged
    Channel(store).dispatch(bad.replace(b"BAD-1", b"BAD-1b"), Route(log_phi=True))
    assert any("Secretname" in str(getattr(r, "content", "")) for r in caplog.records)


def test_reprocessing_a_refused_message_stores_it_once_the_route_can_map_it(store: SqlStore) -> None:
    from transforms.codes import DEFAULT_CODES
    from transforms.oru import OruMapping

    raw = fixture("bad/unknown_unit.hl7")
    refused = Channel(store).dispatch(raw, Route())
    fixed_route = Route(oru=OruMapping(codes=DEFAULT_CODES.extended(units=[("furlongs", "Cel")])))
    again = Channel(store).dispatch_batch([Inbound(raw, fixed_route, reprocess_of=refused.message_id)])[0]
    assert refused.ack_codes == ["AE"] and again.status == "STORED" and not again.duplicate
    with store.engine.connect() as conn:
        row = conn.execute(select(messages).where(messages.c.id == again.message_id)).one()
    assert row.reprocess_of == refused.message_id and count(store, device_readings) == 1


def test_an_exact_resend_of_a_refused_message_is_looked_at_again(store: SqlStore) -> None:
    message = oru("R-1", "P1", "20240101100000", [("heart_rate", 70)])
    picky = Route(sending_applications=frozenset({"MONITOR"}))
    assert Channel(store).dispatch(message, picky).ack_codes == ["AR"]
    again = Channel(store).dispatch(message, Route())  # the route now takes this sender
    assert (again.status, again.ack_codes, again.duplicate) == ("STORED", ["AA"], False)
    assert Channel(store).dispatch(message, Route()).duplicate  # a resend of the stored one is a resend
    assert (count(store, messages), count(store, device_readings)) == (2, 1)


def test_a_failing_readings_insert_answers_ar_207_on_every_database(store: SqlStore) -> None:
    with store.engine.begin() as conn:  # PostgreSQL's COPY and SQLite's executemany both fail now
        conn.execute(text("ALTER TABLE device_readings RENAME TO device_readings_gone"))
    channel = Channel(store)
    receipts = channel.dispatch_batch([Inbound(oru(f"F-{n}", "P1", "20240101100000", [("heart_rate", 70)]), Route())
                                       for n in range(3)])
    assert [r.ack_codes for r in receipts] == [["AR"]] * 3
    assert all("|207^Application internal error^HL70357|" in r.acks[0] for r in receipts)


def test_a_message_that_is_only_msh_is_refused_not_crashed(store: SqlStore) -> None:
    receipt = Channel(store).dispatch(b"MSH\r", Route())
    assert receipt.status == "ERROR" and receipt.acks == ()
