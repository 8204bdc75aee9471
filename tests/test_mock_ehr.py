"""The mock EHR (adapters/mock_ehr) on a real uvicorn socket, called by zeep with the committed wsdl/ehr.wsdl:
its contract, idempotency, the received log across restarts, the control API, WS-Security, concurrency."""
from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import zeep
from lxml import etree
from zeep.exceptions import Fault
from zeep.transports import Transport
from zeep.wsse.username import UsernameToken

from adapters.mock_ehr.server import MockEhr, users_of
from adapters.mock_ehr.state import ReceivedLog
from tests.test_soap_wsdl import canonical

ROOT = Path(__file__).resolve().parent.parent
WSDL = ROOT / "wsdl" / "ehr.wsdl"
BINDING = "{urn:vitalsstream:ehr:1}EhrService"
OBSERVED = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
ENVELOPE = ('<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:e="urn:vitalsstream:ehr:1"><s:Body>{}</s:Body></s:Envelope>')


@pytest.fixture
def ehr(tmp_path: Path) -> Iterator[MockEhr]:
    with MockEhr(tmp_path / "mock-ehr.jsonl") as started:
        yield started


def service(mock: MockEhr, wsse: Any = None) -> Any:
    client = zeep.Client(str(WSDL), settings=zeep.Settings(strict=True, forbid_dtd=True), wsse=wsse,
                         transport=Transport(timeout=10, operation_timeout=10))
    return client.create_service(BINDING, mock.endpoint)


def observations(key: str = "obs:12:1", patient: str = "P1", value: float = 72.0) -> dict[str, Any]:
    return {"IdempotencyKey": key, "PatientId": patient, "SourceMessageId": 12, "Route": "default",
            "Observation": [{"Vital": "heart_rate", "Value": value, "Unit": "/min", "ObservedAt": OBSERVED,
                             "Status": "F", "DeviceId": "MON-1", "SourceSystem": "LN", "SourceCode": "8867-4"}]}


def alert(key: str = "alert:5", state: str = "open", severity: str = "critical") -> dict[str, Any]:
    return {"IdempotencyKey": key, "AlertId": 5, "PatientId": "P1", "DeviceId": "MON-1", "Vital": "heart_rate",
            "Severity": severity, "Kind": "threshold", "State": state,
            "Text": "heart_rate 150 /min above critical high 140", "Value": 150.0, "RaisedAt": OBSERVED,
            "SourceMessageId": 12}


def post_soap(mock: MockEhr, body: str) -> httpx.Response:
    return httpx.post(mock.endpoint, content=ENVELOPE.format(body), timeout=10,
                      headers={"content-type": "text/xml; charset=utf-8", "soapaction": '""'})


def faultcode(response: httpx.Response) -> str:
    return etree.fromstring(response.content).findtext(".//faultcode") or ""


def contract(data: bytes) -> bytes:
    """The WSDL without comments and layout whitespace, canonical as tests/test_soap_wsdl.py compares ours."""
    parser = etree.XMLParser(remove_blank_text=True, remove_comments=True, resolve_entities=False, no_network=True,
                             load_dtd=False)
    return canonical(etree.tostring(etree.fromstring(data, parser)))


def test_the_served_wsdl_is_the_committed_contract(ehr: MockEhr) -> None:
    served = httpx.get(f"{ehr.endpoint}?wsdl", timeout=10)
    assert served.status_code == 200
    assert contract(served.content) == contract(WSDL.read_bytes())
    assert b"<!DOCTYPE" not in WSDL.read_bytes()


def test_a_request_is_recorded_and_listed(ehr: MockEhr) -> None:
    answer = service(ehr).RecordObservations(**observations())
    assert (answer.EhrId, answer.Duplicate) == ("EHR-000001", False)
    assert service(ehr).RecordAlert(**alert()).EhrId == "EHR-000002"
    listed = httpx.get(f"{ehr.url}/received", timeout=10).json()
    assert [(r["kind"], r["ehr_id"], r["idempotency_key"], r["calls"]) for r in listed] == [
        ("observations", "EHR-000001", "obs:12:1", 1), ("alert", "EHR-000002", "alert:5", 1)]
    assert listed[0]["patient_id"] == "P1" and listed[0]["source_message_id"] == 12
    assert listed[0]["readings"] == [{"vital": "heart_rate", "value": 72.0, "unit": "/min",
                                      "observed_at": "2026-11-21T10:00:00Z", "status": "F", "device_id": "MON-1",
                                      "source_system": "LN", "source_code": "8867-4", "comparator": None}]
    assert {key: listed[1][key] for key in ("alert_id", "severity", "alert_kind", "state", "value", "raised_at")} == {
        "alert_id": 5, "severity": "critical", "alert_kind": "threshold", "state": "open", "value": 150.0,
        "raised_at": "2026-11-21T10:00:00Z"}
    assert datetime.fromisoformat(listed[0]["received_at"]).tzinfo is not None


def test_received_filters_by_kind_and_patient(ehr: MockEhr) -> None:
    service(ehr).RecordObservations(**observations("obs:1", patient="P1"))
    service(ehr).RecordObservations(**observations("obs:2", patient="P2"))
    service(ehr).RecordAlert(**alert())
    keys = [r["idempotency_key"] for r in httpx.get(f"{ehr.url}/received", params={"kind": "observations"}).json()]
    assert keys == ["obs:1", "obs:2"]
    keys = [r["idempotency_key"] for r in httpx.get(f"{ehr.url}/received", params={"patient_id": "P1"}).json()]
    assert keys == ["obs:1", "alert:5"]
    assert httpx.get(f"{ehr.url}/received", params={"kind": "webhook"}).status_code == 422


def test_a_repeated_key_answers_the_first_id_and_records_nothing_new(ehr: MockEhr) -> None:
    first = service(ehr).RecordObservations(**observations())
    again = service(ehr).RecordObservations(**observations())
    changed = service(ehr).RecordObservations(**observations(value=80.0))
    assert (again.EhrId, again.Duplicate, changed.EhrId, changed.Duplicate) == (first.EhrId, True, first.EhrId, True)
    [record] = ehr.received()
    assert (record["calls"], record["changed_calls"], record["readings"][0]["value"]) == (3, 1, 72.0)


def test_what_was_received_survives_a_restart(ehr: MockEhr) -> None:
    service(ehr).RecordObservations(**observations())
    service(ehr).RecordObservations(**observations())
    ehr.restart()
    assert [(r["ehr_id"], r["calls"]) for r in ehr.received()] == [("EHR-000001", 2)]
    again = service(ehr).RecordObservations(**observations())
    assert (again.EhrId, again.Duplicate) == ("EHR-000001", True)
    assert service(ehr).RecordAlert(**alert()).EhrId == "EHR-000002"  # the sequence goes on


def test_a_torn_last_line_is_skipped_and_the_log_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "state.jsonl"
    received = ReceivedLog.open(path)
    received.record("alert", "alert:1", "P1", {"state": "open"})
    received.close()
    with path.open("a") as state:
        state.write('{"event": "record", "ehr_id": "EHR-0000')  # a crash in the middle of a line
    received = ReceivedLog.open(path)
    assert received.record("alert", "alert:2", "P1", {"state": "open"}).ehr_id == "EHR-000002"
    received.close()
    received = ReceivedLog.open(path)
    assert [r["idempotency_key"] for r in received.received()] == ["alert:1", "alert:2"]
    received.close()
    first, torn, last = path.read_text().splitlines()
    assert json.loads(first)["ehr_id"] == "EHR-000001" and json.loads(last)["ehr_id"] == "EHR-000002"
    assert torn.endswith("EHR-0000")


def test_faults_and_down_come_as_set_then_service_is_back(ehr: MockEhr) -> None:
    assert httpx.post(f"{ehr.url}/control", json={"mode": "server_fault", "times": 2}).json() == {
        "mode": "server_fault", "delay_seconds": 5.0, "times_left": 2}
    for _ in range(2):
        with pytest.raises(Fault) as fault:
            service(ehr).RecordAlert(**alert())
        assert fault.value.code == "soap11env:Server"
    assert httpx.get(f"{ehr.url}/control").json()["mode"] == "ok"
    assert service(ehr).RecordAlert(**alert()).Duplicate is False

    httpx.post(f"{ehr.url}/control", json={"mode": "client_fault"})
    response = post_soap(ehr, "<e:RecordAlert/>")
    assert (response.status_code, faultcode(response)) == (500, "soap11env:Client")
    httpx.post(f"{ehr.url}/control", json={"mode": "down"})
    response = post_soap(ehr, "<e:RecordAlert/>")
    assert response.status_code == 503 and b"Envelope" not in response.content
    assert httpx.get(f"{ehr.endpoint}?wsdl").status_code == 200  # the contract stays readable
    assert len(ehr.received()) == 1


def test_the_control_api_refuses_what_it_does_not_know(ehr: MockEhr) -> None:
    assert httpx.post(f"{ehr.url}/control", json={"mode": "sideways"}).status_code == 422
    assert httpx.post(f"{ehr.url}/control", json={"mode": "slow", "delay_seconds": -1}).status_code == 422
    assert httpx.post(f"{ehr.url}/control", json={"mode": "down", "times": 0}).status_code == 422
    assert httpx.post(f"{ehr.url}/control", json={"mode": "ok", "extra": 1}).status_code == 422
    assert httpx.get(f"{ehr.url}/control").json() == {"mode": "ok", "delay_seconds": 5.0, "times_left": None}


def test_slow_answers_late_but_answers(ehr: MockEhr) -> None:
    ehr.set_mode("slow", delay_seconds=0.3, times=1)
    assert service(ehr).RecordAlert(**alert()).EhrId == "EHR-000001"
    assert ehr.behaviour.current().mode == "ok"


@pytest.mark.parametrize("body, complaint", [
    ("<e:RecordAlert><e:IdempotencyKey>k</e:IdempotencyKey></e:RecordAlert>", "frequency"),
    ("<e:RecordObservations><e:IdempotencyKey>{}</e:IdempotencyKey><e:PatientId>P</e:PatientId>"
     "<e:SourceMessageId>1</e:SourceMessageId><e:Observation><e:Vital>hr</e:Vital><e:Value>1</e:Value>"
     "<e:ObservedAt>2026-01-01T00:00:00Z</e:ObservedAt></e:Observation></e:RecordObservations>".format("k" * 201),
     "validated"),
])
def test_requests_that_break_the_contract_are_client_faults(ehr: MockEhr, body: str, complaint: str) -> None:
    response = post_soap(ehr, body)
    assert response.status_code == 500
    assert faultcode(response).startswith("soap11env:Client") and complaint in response.text
    assert ehr.received() == []


def test_an_unknown_severity_is_a_client_fault(ehr: MockEhr) -> None:
    with pytest.raises(Fault) as fault:
        service(ehr).RecordAlert(**alert(severity="apocalyptic"))
    assert fault.value.code == "soap11env:Client" and "Severity" in fault.value.message


def test_a_doctype_is_refused(ehr: MockEhr) -> None:
    body = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "x">]><x/>'
    response = httpx.post(ehr.endpoint, content=body, headers={"content-type": "text/xml"})
    assert response.status_code == 400


@pytest.mark.parametrize("use_digest", [False, True])
def test_ws_security_when_required(tmp_path: Path, use_digest: bool) -> None:
    with MockEhr(tmp_path / "ehr.jsonl", username="vitals", password="pw:1") as ehr:
        token = UsernameToken("vitals", "pw:1", use_digest=use_digest)
        assert service(ehr, wsse=token).RecordAlert(**alert()).EhrId == "EHR-000001"
        for wsse in (None, UsernameToken("vitals", "wrong", use_digest=use_digest)):
            with pytest.raises(Fault) as fault:
                service(ehr, wsse=wsse).RecordAlert(**alert("alert:6"))
            assert (fault.value.code, fault.value.message) == ("soap11env:Client", "authentication failed")
        assert httpx.get(f"{ehr.endpoint}?wsdl").status_code == 200
        assert len(ehr.received()) == 1


def test_credentials_come_in_pairs() -> None:
    assert users_of(None, None) == ()
    with pytest.raises(ValueError):
        users_of("vitals", None)


def test_concurrent_requests_are_each_recorded_once(ehr: MockEhr) -> None:
    clients = [service(ehr) for _ in range(8)]

    def send(index: int) -> tuple[str, bool]:
        answer = clients[index % 8].RecordObservations(**observations(f"obs:{index % 40}"))
        return answer.EhrId, answer.Duplicate

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(80)))
    assert sum(not duplicate for _, duplicate in answers) == 40
    assert len({ehr_id for ehr_id, _ in answers}) == 40
    records = ehr.received()
    assert len(records) == 40 and {r["calls"] for r in records} == {2}
    lines = ehr.state_path.read_text().splitlines()
    assert len(lines) == 80 and all(json.loads(line) for line in lines)
