"""EhrSoapSender (adapters/ehr_soap.py) against the mock EHR on a real uvicorn socket, with zeep and the committed
wsdl/ehr.wsdl: delivery, idempotency, how each failure is classified, WS-Security, threads, logging; and the
request mapping (transforms/ehr_request.py) as pure functions."""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from zeep.exceptions import Fault, TransportError, ValidationError, XMLSyntaxError

from adapters.delivery import DeliveryFailed
from adapters.ehr_soap import EhrSoapSender, classify, fault_kind
from adapters.mock_ehr.server import MockEhr
from transforms.ehr_request import RequestError, request_for

ROOT = Path(__file__).resolve().parent.parent
WSDL = ROOT / "wsdl" / "ehr.wsdl"
AT = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def observations_payload(patient: str = "P1", message_id: int = 12) -> dict[str, Any]:
    return {"message_id": message_id, "route": "default", "patient_id": patient, "readings": [
        {"vital": "heart_rate", "value": 72.0, "unit": "/min", "observed_at": "2026-11-21T10:00:00Z", "status": "F",
         "device_id": "MON-1", "source_system": "LN", "source_code": "8867-4", "comparator": ""},
        {"vital": "spo2", "value": 85, "unit": "%", "observed_at": "2026-11-21T11:00:00+01:00", "status": "F",
         "device_id": "MON-1", "source_system": "LN", "source_code": "59408-5", "comparator": "<"}]}


def alert_payload(state: str = "open", resolved_at: str | None = None, resolved_by: str | None = None,
                  patient: str = "P1") -> dict[str, Any]:
    return {"alert_id": 5, "patient_id": patient, "device_id": "MON-1", "vital": "heart_rate", "severity": "critical",
            "kind": "threshold", "state": state, "message": "heart_rate 150 /min above critical high 140",
            "value": 150.0, "raised_at": "2026-11-21T10:00:00Z", "message_id": 12, "resolved_at": resolved_at,
            "resolved_by": resolved_by}


@pytest.fixture
def ehr(tmp_path: Path) -> Iterator[MockEhr]:
    with MockEhr(tmp_path / "mock-ehr.jsonl") as started:
        yield started


@pytest.fixture
def sender(ehr: MockEhr) -> Iterator[EhrSoapSender]:
    created = EhrSoapSender(WSDL, endpoint=ehr.endpoint, timeout_seconds=5)
    yield created
    created.close()


def failure(sender: EhrSoapSender, kind: str = "alert", key: str = "alert:5",
            payload: dict[str, Any] | None = None) -> DeliveryFailed:
    with pytest.raises(DeliveryFailed) as failed:
        sender.send(kind, key, payload if payload is not None else alert_payload())
    return failed.value


def test_observations_are_delivered_and_the_ehr_records_them(sender: EhrSoapSender, ehr: MockEhr) -> None:
    assert sender.send("observations", "obs:12:1", observations_payload()) == "EHR-000001"
    [record] = ehr.received()
    assert (record["kind"], record["patient_id"], record["idempotency_key"], record["source_message_id"],
            record["route"], record["calls"]) == ("observations", "P1", "obs:12:1", 12, "default", 1)
    assert [(r["vital"], r["value"], r["unit"], r["observed_at"], r["comparator"]) for r in record["readings"]] == [
        ("heart_rate", 72.0, "/min", "2026-11-21T10:00:00Z", None), ("spo2", 85.0, "%", "2026-11-21T10:00:00Z", "<")]


def test_an_alert_and_its_resolution_are_two_records(sender: EhrSoapSender, ehr: MockEhr) -> None:
    assert sender.send("alert", "alert:5", alert_payload()) == "EHR-000001"
    resolved = alert_payload("resolved", "2026-11-21T10:30:00Z", "nurse.lee")
    assert sender.send("alert_resolved", "alert:5:resolved", resolved) == "EHR-000002"
    records = ehr.received(kind="alert")
    assert [(r["state"], r["resolved_at"], r["resolved_by"]) for r in records] == [
        ("open", None, None), ("resolved", "2026-11-21T10:30:00Z", "nurse.lee")]
    assert records[0]["text"] == "heart_rate 150 /min above critical high 140"


def test_a_resend_gets_the_same_id_and_records_nothing_new(sender: EhrSoapSender, ehr: MockEhr,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "vitalsstream.ehr")
    first = sender.send("observations", "obs:12:1", observations_payload())
    assert sender.send("observations", "obs:12:1", observations_payload()) == first
    assert [(r["ehr_id"], r["calls"]) for r in ehr.received()] == [(first, 2)]
    assert any("already had record obs:12:1" in r.getMessage() for r in caplog.records)


def test_a_server_fault_is_transient(sender: EhrSoapSender, ehr: MockEhr) -> None:
    ehr.set_mode("server_fault", times=1)
    failed = failure(sender)
    assert not failed.permanent
    assert failed.reason == "SOAP fault soap11env:Server: the EHR could not process the request (mock server fault)"
    assert sender.send("alert", "alert:5", alert_payload()) == "EHR-000001"


def test_a_client_fault_is_permanent(sender: EhrSoapSender, ehr: MockEhr) -> None:
    ehr.set_mode("client_fault")
    failed = failure(sender)
    assert failed.permanent and failed.reason.startswith("SOAP fault soap11env:Client:")
    assert ehr.received() == []


def test_an_answer_later_than_the_timeout_is_transient_and_the_resend_a_duplicate(ehr: MockEhr) -> None:
    sender = EhrSoapSender(WSDL, endpoint=ehr.endpoint, timeout_seconds=0.5)
    try:
        ehr.set_mode("slow", delay_seconds=1.5, times=1)
        failed = failure(sender)
        assert not failed.permanent and failed.reason == "the EHR did not answer within 0.5 s"
        deadline = time.monotonic() + 10
        while not ehr.received() and time.monotonic() < deadline:  # the EHR still records it, late
            time.sleep(0.05)
        assert sender.send("alert", "alert:5", alert_payload()) == "EHR-000001"
        assert [r["calls"] for r in ehr.received()] == [2]
    finally:
        sender.close()


def test_down_without_a_soap_answer_is_transient(sender: EhrSoapSender, ehr: MockEhr) -> None:
    ehr.set_mode("down", times=1)
    failed = failure(sender)
    assert (failed.permanent, failed.reason) == (False, "the EHR answered HTTP 503 without a SOAP fault")


def test_a_stopped_ehr_is_transient_and_delivery_resumes_when_it_is_back(sender: EhrSoapSender,
                                                                          ehr: MockEhr) -> None:
    assert sender.send("alert", "alert:5", alert_payload()) == "EHR-000001"
    port = ehr.port
    ehr.stop()
    failed = failure(sender, key="alert:6")
    assert not failed.permanent and failed.reason.startswith("could not reach the EHR (ConnectionError")
    ehr.start()
    assert ehr.port == port
    assert sender.send("alert", "alert:6", alert_payload()) == "EHR-000002"
    assert [r["idempotency_key"] for r in ehr.received()] == ["alert:5", "alert:6"]


def test_an_address_without_the_service_is_permanent(ehr: MockEhr) -> None:
    sender = EhrSoapSender(WSDL, endpoint=f"{ehr.url}/nowhere", timeout_seconds=5)
    try:
        failed = failure(sender)
    finally:
        sender.close()
    assert (failed.permanent, failed.reason) == (True, "the EHR answered HTTP 404 without a SOAP fault")


@pytest.mark.parametrize("use_digest", [False, True])
def test_ws_security_username_token(tmp_path: Path, use_digest: bool) -> None:
    with MockEhr(tmp_path / "ehr.jsonl", username="vitals", password="s3cret") as ehr:
        senders = [EhrSoapSender(WSDL, ehr.endpoint, 5, "vitals", "s3cret", use_digest=use_digest),
                   EhrSoapSender(WSDL, ehr.endpoint, 5),
                   EhrSoapSender(WSDL, ehr.endpoint, 5, "vitals", "wrong", use_digest=use_digest)]
        try:
            assert senders[0].send("alert", "alert:5", alert_payload()) == "EHR-000001"
            assert senders[0].send("alert", "alert:6", alert_payload()) == "EHR-000002"  # a fresh nonce each time
            for refused in senders[1:]:
                failed = failure(refused, key="alert:7")
                assert failed.permanent and failed.reason == "SOAP fault soap11env:Client: authentication failed"
        finally:
            for sender in senders:
                sender.close()
        assert len(ehr.received()) == 2


def test_worker_threads_share_one_sender(sender: EhrSoapSender, ehr: MockEhr) -> None:
    def deliver(index: int) -> str:
        return sender.send("observations", f"obs:{index}:1", observations_payload(f"P{index}", index))

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(deliver, range(64)))
    assert len(set(ids)) == 64
    records = {r["idempotency_key"]: r for r in ehr.received()}
    assert len(records) == 64
    assert all(records[f"obs:{i}:1"]["ehr_id"] == ids[i] and records[f"obs:{i}:1"]["patient_id"] == f"P{i}"
               for i in range(64))


def test_envelopes_are_not_logged_unless_asked(ehr: MockEhr, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    quiet = EhrSoapSender(WSDL, endpoint=ehr.endpoint, timeout_seconds=5)
    loud = EhrSoapSender(WSDL, endpoint=ehr.endpoint, timeout_seconds=5, log_envelopes=True)
    try:
        quiet.send("observations", "obs:1", observations_payload("P-SECRET-1"))
        assert not any("P-SECRET-1" in r.getMessage() for r in caplog.records)
        loud.send("observations", "obs:2", observations_payload("P-SECRET-2"))
        assert {r.name for r in caplog.records if "P-SECRET-2" in r.getMessage()} == {"vitalsstream.ehr.envelopes"}
    finally:
        quiet.close()
        loud.close()


def test_a_payload_that_cannot_make_a_request_is_permanent_and_not_echoed(sender: EhrSoapSender,
                                                                          ehr: MockEhr) -> None:
    payload = observations_payload("P-SECRET")
    payload["readings"][1]["observed_at"] = "yesterday-at-P-SECRET"
    failed = failure(sender, "observations", "obs:1", payload)
    assert failed.permanent
    assert failed.reason == "observations payload: readings[1].observed_at is not an ISO 8601 time"
    assert failure(sender, "webhook", "w:1", {}).permanent
    assert ehr.received() == []


def test_a_closed_sender_sends_nothing(ehr: MockEhr) -> None:
    sender = EhrSoapSender(WSDL, endpoint=ehr.endpoint)
    sender.send("alert", "alert:5", alert_payload())
    sender.close()
    failed = failure(sender, key="alert:6")
    assert (failed.permanent, failed.reason) == (False, "the EHR sender is closed")


def test_the_contract_must_be_a_local_ehr_wsdl(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        EhrSoapSender(tmp_path / "missing.wsdl")
    with pytest.raises(ValueError, match="no binding"):
        EhrSoapSender(ROOT / "wsdl" / "vitals.wsdl")
    with pytest.raises(ValueError):
        EhrSoapSender(WSDL, username="vitals")


@pytest.mark.parametrize("code, kind", [
    ("soap11env:Client", "Client"), ("soap:Client.Authentication", "Client"), ("Client", "Client"),
    ("{http://www.w3.org/2003/05/soap-envelope}Sender", "Sender"), ("env:Receiver", "Receiver"),
    ("soap:Server", "Server"), ("", ""),
])
def test_fault_kind(code: str, kind: str) -> None:
    assert fault_kind(code) == kind


@pytest.mark.parametrize("error, permanent", [
    (Fault("no such patient", code="soap:Client"), True),
    (Fault("bad", code="s:Sender"), True),
    (Fault("mismatch", code="soap:VersionMismatch"), True),
    (Fault("busy", code="soap:Server"), False),
    (Fault("unknown", code=None), False),
    (TransportError(status_code=500), False),
    (TransportError(status_code=502), False),
    (TransportError(status_code=408), False),
    (TransportError(status_code=429), False),
    (TransportError(status_code=400), True),
    (TransportError(status_code=401), True),
    (TransportError(status_code=302), True),
    (TransportError(status_code=200), False),
    (XMLSyntaxError("not xml"), False),
    (ValidationError("Missing element PatientId", path=["PatientId"]), True),
    (requests.exceptions.ReadTimeout(), False),
    (requests.exceptions.ConnectionError("refused"), False),
    (requests.exceptions.MissingSchema("no scheme"), True),
])
def test_failures_are_classified(error: Exception, permanent: bool) -> None:
    assert classify(error, 10).permanent is permanent


def test_a_fault_reason_is_trimmed() -> None:
    reason = classify(Fault("x" * 500, code="soap:Server"), 10).reason
    assert len(reason) == 200 and reason.endswith("...")


def test_observations_map_to_record_observations() -> None:
    operation, request = request_for("observations", "obs:12:1", observations_payload())
    assert operation == "RecordObservations"
    assert request == {
        "IdempotencyKey": "obs:12:1", "PatientId": "P1", "SourceMessageId": 12, "Route": "default",
        "Observation": [
            {"Vital": "heart_rate", "Value": 72.0, "Unit": "/min", "ObservedAt": AT, "Status": "F",
             "DeviceId": "MON-1", "SourceSystem": "LN", "SourceCode": "8867-4", "Comparator": None},
            {"Vital": "spo2", "Value": 85.0, "Unit": "%", "ObservedAt": AT, "Status": "F", "DeviceId": "MON-1",
             "SourceSystem": "LN", "SourceCode": "59408-5", "Comparator": "<"}]}
    assert all(item["ObservedAt"].tzinfo == UTC for item in request["Observation"])


@pytest.mark.parametrize("kind", ["alert", "alert_resolved"])
def test_alerts_map_to_record_alert(kind: str) -> None:
    payload = alert_payload("resolved", "2026-11-21T10:30:00", "nurse.lee")  # no offset: UTC
    operation, request = request_for(kind, "alert:5", payload)
    assert operation == "RecordAlert"
    assert request == {
        "IdempotencyKey": "alert:5", "AlertId": 5, "PatientId": "P1", "DeviceId": "MON-1", "Vital": "heart_rate",
        "Severity": "critical", "Kind": "threshold", "State": "resolved",
        "Text": "heart_rate 150 /min above critical high 140", "Value": 150.0, "RaisedAt": AT,
        "ResolvedAt": datetime(2026, 11, 21, 10, 30, tzinfo=UTC), "ResolvedBy": "nurse.lee", "SourceMessageId": 12}


def test_an_open_trend_alert_leaves_the_optional_fields_out() -> None:
    payload = {**alert_payload(), "vital": "heart_rate,spo2", "kind": "trend", "value": None, "message_id": None,
               "device_id": ""}
    _, request = request_for("alert", "alert:9", payload)
    assert (request["Value"], request["SourceMessageId"], request["DeviceId"], request["ResolvedAt"]) == (
        None, None, None, None)


@pytest.mark.parametrize("change, complaint", [
    ({"patient_id": ""}, "observations payload: patient_id is missing or empty"),
    ({"message_id": None}, "observations payload: message_id is missing"),
    ({"message_id": "twelve"}, "observations payload: message_id must be an integer"),
    ({"readings": []}, "observations payload: readings must be a non-empty list"),
])
def test_observation_payload_errors_name_the_field(change: dict[str, Any], complaint: str) -> None:
    with pytest.raises(RequestError) as error:
        request_for("observations", "obs:1", {**observations_payload(), **change})
    assert str(error.value) == complaint


@pytest.mark.parametrize("reading_change, complaint", [
    ({"value": "72"}, "readings[0].value must be a number"),
    ({"value": float("nan")}, "readings[0].value must be a finite number"),
    ({"vital": None}, "readings[0].vital is missing or empty"),
    ({"observed_at": 1700000000}, "readings[0].observed_at must be an ISO 8601 time"),
])
def test_reading_errors_name_the_field_not_the_value(reading_change: dict[str, Any], complaint: str) -> None:
    payload = observations_payload()
    payload["readings"][0].update(reading_change)
    with pytest.raises(RequestError) as error:
        request_for("observations", "obs:1", payload)
    assert str(error.value) == f"observations payload: {complaint}"


def test_keys_and_kinds_are_checked() -> None:
    with pytest.raises(RequestError, match="1 to 200"):
        request_for("alert", "k" * 201, alert_payload())
    with pytest.raises(RequestError, match="1 to 200"):
        request_for("alert", "", alert_payload())
    with pytest.raises(RequestError, match="no EHR operation"):
        request_for("webhook", "w:1", alert_payload())
    assert request_for("alert", "k" * 200, alert_payload())[1]["IdempotencyKey"] == "k" * 200
