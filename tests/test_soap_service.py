"""The SOAP service over a real uvicorn server, called by zeep with our published WSDL (from disk)."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import zeep
from sqlalchemy import select
from zeep.exceptions import Fault
from zeep.transports import Transport

from adapters.http_api import create_app
from adapters.sql_store import SqlStore
from adapters.sql_tables import device_readings, messages
from tests.http_client import AppClient, serving

ROOT = Path(__file__).resolve().parent.parent
WSDL = {"1.1": (ROOT / "wsdl" / "vitals.wsdl", "vitals"), "1.2": (ROOT / "wsdl" / "vitals12.wsdl", "vitals12")}
SERVICE = "{urn:vitalsstream:vitals:1}VitalsService"


def soap_client(base_url: str, version: str = "1.1") -> tuple[zeep.Client, object]:
    """zeep as a partner would use it: WSDL from disk, no DTDs, a timeout, our test server's address."""
    wsdl, path = WSDL[version]
    client = zeep.Client(str(wsdl), settings=zeep.Settings(forbid_dtd=True, strict=True),
                         transport=Transport(timeout=10, operation_timeout=10))
    return client, client.create_service(f"{SERVICE}", f"{base_url}/soap/{path}")


def reading(patient: str = "P-SOAP", vital: str = "heart_rate", value: str = "150", unit: str | None = "/min",
            at: str = "2024-03-05T10:10:00Z", device: str = "MON-9") -> dict[str, object]:
    return {"PatientId": patient, "DeviceId": device, "Vital": vital, "Value": value, "Unit": unit,
            "ObservedAt": at}


@pytest.fixture
def base_url(store: SqlStore) -> Iterator[str]:
    with serving(create_app(lambda: {"status": "ok"}, store=store)) as url:
        yield url


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_submit_vitals_stores_through_the_channel_and_answers_with_alerts(base_url: str, store: SqlStore,
                                                                         version: str) -> None:
    _, service = soap_client(base_url, version)
    result = service.SubmitVitals(Reading=[reading(), reading(vital="temperature", value="98.6", unit="[degF]"),
                                           reading(vital="spo2", value="97", unit=None)],
                                  Caller="EHR-1", IdempotencyKey=f"k-{version}")
    assert {(r.Vital, r.Value, r.Unit) for r in result.Readings} == {
        ("heart_rate", 150.0, "/min"), ("temperature", 37.0, "Cel"), ("spo2", 97.0, "%")}
    assert result.Readings[0].ObservedAt == datetime(2024, 3, 5, 10, 10, tzinfo=UTC)
    assert [(a.Vital, a.Severity, a.State) for a in result.Alerts] == [("heart_rate", "critical", "open")]
    assert result.Duplicate is False
    with store.engine.connect() as conn:
        row = conn.execute(select(messages)).one()
        units = dict(conn.execute(select(device_readings.c.vital, device_readings.c.source_unit)).all())
    assert (row.status, row.sending_application, row.sending_facility, row.control_id, row.route) == (
        "STORED", "SOAP", "EHR-1", f"k-{version}", "soap")
    assert "Envelope" in row.raw and units["temperature"] == "[degF]"


def test_a_resend_with_the_same_key_stores_nothing_and_another_body_is_a_client_fault(base_url: str,
                                                                                      store: SqlStore) -> None:
    _, service = soap_client(base_url)
    first = service.SubmitVitals(Reading=[reading()], IdempotencyKey="same")
    again = service.SubmitVitals(Reading=[reading()], IdempotencyKey="same")
    assert again.Duplicate is True and again.MessageId == first.MessageId
    assert [r.Id for r in again.Readings] == [r.Id for r in first.Readings]
    with pytest.raises(Fault) as refused:
        service.SubmitVitals(Reading=[reading(value="70")], IdempotencyKey="same")
    assert refused.value.code.endswith("Client") and "already used" in refused.value.message
    with store.engine.connect() as conn:
        assert len(conn.execute(select(device_readings)).all()) == 1


@pytest.mark.parametrize("bad, words", [
    ({"Value": "fast"}, "value is not a number"),
    ({"Vital": "pulse"}, "vital 'pulse' is not one of"),
    ({"PatientId": ""}, "patient id is missing"),
    ({"Unit": "mm[Hg]"}, "unit 'mm[Hg]' cannot express heart_rate"),
    ({"Unit": "furlong"}, "unit 'furlong' is not a UCUM unit we know"),
    ({"ObservedAt": "yesterday"}, "observed time is not an ISO 8601"),
])
@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_invalid_readings_are_client_faults_in_plain_words(base_url: str, store: SqlStore, bad: dict, words: str,
                                                           version: str) -> None:
    _, service = soap_client(base_url, version)
    with pytest.raises(Fault) as fault:
        service.SubmitVitals(Reading=[reading(), {**reading(), **bad}])
    assert fault.value.code.endswith("Client" if version == "1.1" else "Sender")
    assert fault.value.message.startswith("reading 2: ") and words in fault.value.message
    assert "Traceback" not in fault.value.message
    with store.engine.connect() as conn:
        assert conn.execute(select(messages)).all() == []


def test_get_readings_by_patient_or_device_and_time_range(base_url: str) -> None:
    _, service = soap_client(base_url)
    service.SubmitVitals(Reading=[reading(at=f"2024-03-05T10:{m:02}:00Z", value=str(60 + m)) for m in (0, 10, 20)]
                         + [reading(patient="P-OTHER", device="MON-2")])
    got = service.GetReadings(PatientId="P-SOAP", From=datetime(2024, 3, 5, 10, 5, tzinfo=UTC),
                              To=datetime(2024, 3, 5, 10, 20, tzinfo=UTC))
    assert [r.Value for r in got] == [70.0]
    assert [r.Value for r in service.GetReadings(PatientId="P-SOAP", Limit=2)] == [80.0, 70.0]
    assert [r.PatientId for r in service.GetReadings(DeviceId="MON-2")] == ["P-OTHER"]
    assert not service.GetReadings(PatientId="P-NOBODY")  # zeep gives None for an empty list
    with pytest.raises(Fault, match="give a PatientId or a DeviceId"):
        service.GetReadings()
    with pytest.raises(Fault, match="Limit must be between 1 and 1000"):
        service.GetReadings(PatientId="P-SOAP", Limit=0)


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_alerts_are_listed_acknowledged_and_resolved(base_url: str, version: str) -> None:
    _, service = soap_client(base_url, version)
    service.SubmitVitals(Reading=[reading(), reading(vital="spo2", value="93", unit="%")])
    alerts = service.GetAlerts(PatientId="P-SOAP")
    assert sorted((a.Vital, a.Severity) for a in alerts) == [("heart_rate", "critical"), ("spo2", "warning")]
    critical = service.GetAlerts(PatientId="P-SOAP", Severity="critical", State="open")
    assert [a.Vital for a in critical] == ["heart_rate"]
    acked = service.AcknowledgeAlert(AlertId=critical[0].Id, By="nurse.jones")
    assert (acked.State, acked.AcknowledgedBy) == ("acknowledged", "nurse.jones") and acked.AcknowledgedAt
    with pytest.raises(Fault, match="already acknowledged"):
        service.AcknowledgeAlert(AlertId=critical[0].Id, By="nurse.smith")
    resolved = service.ResolveAlert(AlertId=critical[0].Id, By="dr.who")
    assert (resolved.State, resolved.ResolvedBy) == ("resolved", "dr.who")
    assert [a.Vital for a in service.GetAlerts(PatientId="P-SOAP", State="open")] == ["spo2"]
    with pytest.raises(Fault, match="there is no alert 999999"):
        service.ResolveAlert(AlertId=999999, By="dr.who")
    with pytest.raises(Fault, match="State must be one of"):
        service.GetAlerts(State="closed")


def test_the_same_reading_by_soap_and_by_rest_gives_the_same_canonical_row(base_url: str, store: SqlStore) -> None:
    _, service = soap_client(base_url)
    service.SubmitVitals(Reading=[reading(patient="P-SAME", device="MON-7", value="88"),
                                  reading(patient="P-SAME", device="MON-7", vital="temperature", value="98.6",
                                          unit="[degF]")])
    AppClient(create_app(lambda: {"status": "ok"}, store=store)).post(
        "/api/v1/devices/MON-7/readings",
        json={"patient_id": "P-SAME", "timestamp": "2024-03-05T10:10:00Z", "heart_rate": 88, "temperature_c": 37})
    canonical = (device_readings.c.patient_id, device_readings.c.device_id, device_readings.c.vital,
                 device_readings.c.value, device_readings.c.unit, device_readings.c.observed_at)
    with store.engine.connect() as conn:
        rows = conn.execute(select(*canonical, device_readings.c.source_system)
                            .order_by(device_readings.c.source_system, device_readings.c.vital)).all()
    by_source = {system: [tuple(r)[:-1] for r in rows if r.source_system == system] for system in ("SOAP", "REST")}
    assert by_source["SOAP"] == by_source["REST"] and len(by_source["SOAP"]) == 2
