"""SOAP edges: raw malformed envelopes, DOCTYPE, size limit, cut-off bodies, Server faults, no PHI in logs."""
from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from adapters.soap import soap_app
from adapters.soap.guard import BodyGuard
from adapters.sql_store import SqlStore
from tests.http_client import serving

ENV11 = "http://schemas.xmlsoap.org/soap/envelope/"
ENV12 = "http://www.w3.org/2003/05/soap-envelope"
READING = ("<v:Reading><v:PatientId>P-SECRET-4711</v:PatientId><v:DeviceId>MON-1</v:DeviceId>"
           "<v:Vital>heart_rate</v:Vital><v:Value>{value}</v:Value><v:Unit>/min</v:Unit>"
           "<v:ObservedAt>2024-03-05T10:10:00Z</v:ObservedAt></v:Reading>")


def envelope(value: str = "72", env: str = ENV11, body: str | None = None) -> str:
    inner = body if body is not None else f"<v:SubmitVitals>{READING.format(value=value)}</v:SubmitVitals>"
    return (f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{env}" '
            f'xmlns:v="urn:vitalsstream:vitals:1"><s:Body>{inner}</s:Body></s:Envelope>')


def soap_post(url: str, text: str | bytes, version: str = "1.1", **kwargs) -> httpx.Response:
    content_type = "text/xml; charset=utf-8" if version == "1.1" else "application/soap+xml; charset=utf-8"
    path = "/soap/vitals" if version == "1.1" else "/soap/vitals12"
    return httpx.post(url + path, content=text, headers={"Content-Type": content_type,
                                                        "SOAPAction": "SubmitVitals"}, timeout=10, **kwargs)


def mounted(store: SqlStore, **options) -> FastAPI:
    app = FastAPI()
    app.mount("/soap", soap_app(store, **options))
    return app


@pytest.fixture
def url(store: SqlStore) -> Iterator[str]:
    with serving(mounted(store, max_body=64 * 1024)) as base:
        yield base


def test_a_raw_soap11_envelope_is_stored_and_a_bad_value_is_a_client_fault(url: str) -> None:
    ok = soap_post(url, envelope())
    assert ok.status_code == 200 and "SubmitVitalsResult" in ok.text
    bad = soap_post(url, envelope("fast"))
    assert bad.status_code == 500 and "<faultcode>soap11env:Client</faultcode>" in bad.text
    assert "value is not a number" in bad.text and "Traceback" not in bad.text


def test_soap12_faults_use_the_soap12_codes(url: str) -> None:
    bad = soap_post(url, envelope("fast", ENV12), "1.2")
    assert bad.headers["content-type"].startswith("application/soap+xml")
    assert "Sender" in bad.text and "value is not a number" in bad.text and ENV12 in bad.text


@pytest.mark.parametrize("text", ["<s:Envelope", "not xml at all", envelope(body="<v:Unknown/>")])
def test_malformed_envelopes_are_client_faults_without_tracebacks(url: str, text: str) -> None:
    response = soap_post(url, text)
    assert response.status_code in (400, 500) and "Client" in response.text
    assert "Traceback" not in response.text and "File \"" not in response.text


@pytest.mark.parametrize("dtd", [
    '<!DOCTYPE s [<!ENTITY x "P-EVIL">]>',
    '<!DOCTYPE lolz [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>',
    '<!DOCTYPE foo SYSTEM "file:///etc/passwd">',
])
def test_any_doctype_is_refused_before_spyne_parses(url: str, store: SqlStore, dtd: str) -> None:
    text = envelope().replace("?>", "?>" + dtd, 1)
    assert soap_post(url, text).status_code == 400
    assert soap_post(url, text.encode("utf-16")).status_code == 400
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM messages").scalar_one() == 0


def test_bodies_over_the_limit_are_413_declared_or_streamed(url: str) -> None:
    big = envelope(body="<v:SubmitVitals>" + READING.format(value="72") * 400 + "</v:SubmitVitals>")
    assert len(big) > 64 * 1024
    assert soap_post(url, big).status_code == 413

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 8192):
            yield big[start:start + 8192].encode()

    assert soap_post(url, chunks()).status_code == 413


def test_the_default_limit_is_2_mib() -> None:
    assert BodyGuard(None).max_body == 2 * 1024 * 1024


def test_a_client_that_disconnects_mid_body_gets_400_and_holds_nothing(store: SqlStore) -> None:
    sent: list[dict] = []
    messages = iter([{"type": "http.request", "body": b"<s:Env", "more_body": True}, {"type": "http.disconnect"}])

    async def receive() -> dict:
        return next(messages)

    async def send(message: dict) -> None:
        sent.append(message)

    async def never(*_args) -> None:
        raise AssertionError("the WSGI app must not be called")

    asyncio.run(BodyGuard(never)({"type": "http", "method": "POST", "headers": []}, receive, send))
    assert sent[0]["status"] == 400

    app = mounted(store)
    started = time.monotonic()
    with serving(app) as base:
        address = urlsplit(base)
        for _ in range(3):  # headers promise 10 kB, a little arrives, the client goes away
            with socket.create_connection((address.hostname, address.port)) as sock:
                sock.sendall(b"POST /soap/vitals HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
                             b"Content-Length: 10000\r\n\r\n<s:Envelope")
        assert httpx.get(base + "/soap/vitals?wsdl", timeout=10).status_code == 200
    assert time.monotonic() - started < 15  # shutdown did not wait on the abandoned requests


def test_a_database_failure_is_a_server_fault(tmp_path) -> None:
    broken = SqlStore.from_url(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'vitals.db'}")
    with serving(mounted(broken)) as base:
        stored = soap_post(base, envelope())
        read = soap_post(base, envelope(body="<v:GetReadings><v:PatientId>P-1</v:PatientId></v:GetReadings>"))
    for response in (stored, read):
        assert response.status_code == 500 and "<faultcode>soap11env:Server</faultcode>" in response.text
        assert "could not be stored" in response.text or "cannot reach its database" in response.text
        assert "Traceback" not in response.text and "sqlite" not in response.text.lower()


def test_request_content_never_reaches_the_logs(url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    soap_post(url, envelope())
    soap_post(url, envelope("fast"))
    soap_post(url, envelope().replace("</v:Reading>", "</v:Readin>"))  # malformed: Spyne logs the string
    soap_post(url, envelope(body="<v:GetReadings><v:PatientId>P-SECRET-4711</v:PatientId></v:GetReadings>"))
    assert caplog.records, "nothing was logged at all: the check would prove nothing"
    assert all("P-SECRET-4711" not in f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "P-SECRET-4711" not in caplog.text
