"""IHE PCD-01 (CommunicatePCDData over SOAP 1.2) at /soap/pcd01: the HL7 path of the channel, answered with
the HL7 ACK. zeep loads our published WSDL from disk; the server is a real uvicorn."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import zeep
from fastapi import FastAPI
from sqlalchemy import select
from zeep.exceptions import Fault
from zeep.transports import Transport

from adapters.http_api import create_app
from adapters.soap import soap_app
from adapters.sql_store import SqlStore
from adapters.sql_tables import device_readings, messages
from engine.channel import Route
from tests.http_client import serving
from tests.messages import fixture, oru
from tests.test_soap_wsdl import canonical

WSDL = Path(__file__).resolve().parent.parent / "wsdl" / "pcd01.wsdl"
BINDING = "{urn:ihe:pcd:dec:2010}DeviceObservationConsumer"
ENV11 = "http://schemas.xmlsoap.org/soap/envelope/"
ENV12 = "http://www.w3.org/2003/05/soap-envelope"


def pcd_service(base_url: str) -> object:
    """zeep as a device gateway would use it: WSDL from disk, no DTDs, a timeout, our server's address."""
    client = zeep.Client(str(WSDL), settings=zeep.Settings(forbid_dtd=True, strict=True),
                         transport=Transport(timeout=10, operation_timeout=10))
    return client.create_service(BINDING, f"{base_url}/soap/pcd01")


def hl7(name: str) -> str:
    return fixture(name).decode("ascii")


def segments(ack: str) -> dict[str, list[str]]:
    assert "\n" not in ack, "ACK segments end with CR"
    return {line.split("|", 1)[0]: line.split("|") for line in ack.split("\r") if line}


def table(store: SqlStore, statement) -> list:
    with store.engine.connect() as conn:
        return conn.execute(statement).all()


@pytest.fixture
def base_url(store: SqlStore) -> Iterator[str]:
    with serving(create_app(lambda: {"status": "ok"}, store=store)) as url:
        yield url


def test_a_pcd01_oru_is_stored_through_the_hl7_path_and_answered_aa(base_url: str, store: SqlStore) -> None:
    ack = pcd_service(base_url).CommunicatePCDData(hl7("pcd01_nibp.hl7"))
    msa = segments(ack)["MSA"]
    assert msa[1:3] == ["AA", "MSGID1234"] and segments(ack)["MSH"][8] == "ACK^R01^ACK"
    row = table(store, select(messages)).pop()
    assert (row.status, row.route, row.control_id, row.message_type, row.ack) == (
        "STORED", "default", "MSGID1234", "ORU^R01", ack)
    assert row.raw == hl7("pcd01_nibp.hl7")  # the CRs survive XML (zeep writes &#13;): kept as sent
    readings = table(store, select(device_readings.c.vital, device_readings.c.value, device_readings.c.unit)
                     .order_by(device_readings.c.vital))
    assert [tuple(r) for r in readings] == [("bp_diastolic", 80.0, "mm[Hg]"), ("bp_systolic", 120.0, "mm[Hg]")]


def test_a_bad_message_is_answered_ae_and_kept_as_error(base_url: str, store: SqlStore) -> None:
    ack = pcd_service(base_url).CommunicatePCDData(hl7("bad/nonnumeric_value.hl7"))
    parts = segments(ack)
    assert parts["MSA"][1:3] == ["AE", "BAD-1"] and parts["ERR"][2] == "OBX^1^5" and "102" in parts["ERR"][3]
    assert [(r.status, r.ack_code) for r in table(store, select(messages))] == [("ERROR", "AE")]
    assert table(store, select(device_readings)) == []


def test_an_exact_resend_gets_the_original_ack_and_stores_nothing(base_url: str, store: SqlStore) -> None:
    service = pcd_service(base_url)
    first = service.CommunicatePCDData(hl7("pcd01_nibp.hl7"))
    again = service.CommunicatePCDData(hl7("pcd01_nibp.hl7"))
    assert again == first
    assert len(table(store, select(messages))) == 1 and len(table(store, select(device_readings))) == 2


def test_enhanced_mode_is_answered_with_the_application_ack(base_url: str) -> None:
    ack = pcd_service(base_url).CommunicatePCDData(hl7("enhanced_al_al.hl7"))  # CA, then AA
    assert segments(ack)["MSA"][1:3] == ["AA", "ENH-1"]


def test_no_acknowledgement_requested_is_an_empty_answer(base_url: str, store: SqlStore) -> None:
    message = oru("NE-1", "P-NE", "20240305101000", [("heart_rate", 72)], ack_modes="NE/NE").decode()
    assert not pcd_service(base_url).CommunicatePCDData(message)  # zeep: None for the empty element
    assert [r.status for r in table(store, select(messages))] == ["STORED"]


@pytest.mark.parametrize("body, words, kept", [
    ("hello, not HL7", "does not hold an HL7 v2 message", ["ERROR"]),  # kept for audit, as MLLP keeps it
    ("   ", "is empty", []),
    (hl7("bad/ack_message.hl7"), "an acknowledgement is never acknowledged", ["FILTERED"]),
])
def test_a_body_that_is_no_oru_is_a_sender_fault(base_url: str, store: SqlStore, body: str, words: str,
                                                 kept: list[str]) -> None:
    with pytest.raises(Fault) as fault:
        pcd_service(base_url).CommunicatePCDData(body)
    assert fault.value.code.endswith("Sender") and words in fault.value.message
    assert "Traceback" not in fault.value.message
    assert [r.status for r in table(store, select(messages))] == kept
    assert table(store, select(device_readings)) == []


def test_a_soap11_request_is_refused_with_a_version_mismatch(base_url: str, store: SqlStore) -> None:
    envelope = (f'<s:Envelope xmlns:s="{ENV11}"><s:Body><CommunicatePCDData xmlns="urn:ihe:pcd:dec:2010">'
                f'{hl7("pcd01_nibp.hl7").replace("&", "&amp;").replace(chr(13), "&#13;")}'
                f'</CommunicatePCDData></s:Body></s:Envelope>')
    refused = httpx.post(f"{base_url}/soap/pcd01", content=envelope, timeout=10,
                         headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"CommunicatePCDData"'})
    assert refused.status_code == 500 and refused.headers["content-type"].startswith("text/xml")
    assert "<faultcode>env:VersionMismatch</faultcode>" in refused.text and "SOAP 1.2 only" in refused.text
    assert f'qname="ns1:Envelope" xmlns:ns1="{ENV12}"' in refused.text  # the Upgrade header
    mixed = httpx.post(f"{base_url}/soap/pcd01", content=envelope, timeout=10,
                       headers={"Content-Type": "application/soap+xml; charset=utf-8"})
    assert mixed.status_code == 500 and "Sender" in mixed.text and f"{{{ENV12}}}Envelope" in mixed.text
    assert table(store, select(messages)) == []


def test_the_ihe_sample_with_ws_addressing_headers_is_accepted(base_url: str, store: SqlStore) -> None:
    header = ('<s:Header xmlns:wsa="http://www.w3.org/2005/08/addressing">'
              '<wsa:To s:mustUnderstand="true">http://example.org/pcd01</wsa:To>'
              '<wsa:MessageID s:mustUnderstand="true">urn:uuid:A5259034</wsa:MessageID>'
              '<wsa:Action s:mustUnderstand="true">urn:ihe:pcd:2010:CommunicatePCDData</wsa:Action></s:Header>')
    body = hl7("pcd01_nibp.hl7").replace("&", "&amp;").replace("\r", "&#xD;")
    envelope = (f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{ENV12}">{header}<s:Body>'
                f'<CommunicatePCDData xmlns="urn:ihe:pcd:dec:2010">{body}</CommunicatePCDData></s:Body></s:Envelope>')
    answer = httpx.post(f"{base_url}/soap/pcd01", content=envelope, timeout=10, headers={
        "Content-Type": 'application/soap+xml; charset=utf-8; action="urn:ihe:pcd:2010:CommunicatePCDData"'})
    assert answer.status_code == 200 and "CommunicatePCDDataResponse" in answer.text
    assert "MSA|AA|MSGID1234" in answer.text
    assert len(table(store, select(device_readings))) == 2


def test_the_route_is_configurable(store: SqlStore) -> None:
    app = FastAPI()
    app.mount("/soap", soap_app(store, pcd01_route=Route(name="icu-pcd01", original_mode=True)))
    with serving(app) as url:
        ack = pcd_service(url).CommunicatePCDData(hl7("enhanced_al_al.hl7"))
    assert segments(ack)["MSA"][1] == "AA"
    assert [r.route for r in table(store, select(messages))] == ["icu-pcd01"]


def test_a_store_failure_is_answered_ar_207_not_a_fault(tmp_path: Path) -> None:
    broken = SqlStore.from_url(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'vitals.db'}")
    app = FastAPI()
    app.mount("/soap", soap_app(broken))
    with serving(app) as url:
        ack = pcd_service(url).CommunicatePCDData(hl7("pcd01_nibp.hl7"))
    parts = segments(ack)
    assert parts["MSA"][1:3] == ["AR", "MSGID1234"] and "207" in parts["ERR"][3]


def test_the_served_wsdl_is_the_published_one(tmp_path: Path) -> None:
    app = FastAPI()
    app.mount("/soap", soap_app(SqlStore.from_url(f"sqlite:///{tmp_path / 'v.db'}")))
    with serving(app) as base:
        served = httpx.get(f"{base}/soap/pcd01?wsdl", timeout=10)
    assert served.status_code == 200
    assert canonical(served.content) == canonical(WSDL.read_bytes())
    assert b"<!DOCTYPE" not in WSDL.read_bytes()
