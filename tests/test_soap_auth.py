"""SOAP authentication (adapters/soap/security.py): HTTP Basic or a WS-Security UsernameToken (PasswordText,
PasswordDigest), on a real uvicorn server, called by zeep with our published WSDLs; VITALS_SOAP_USERS."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import requests
import zeep
from lxml import etree
from sqlalchemy import func, select
from zeep.exceptions import Fault, TransportError
from zeep.plugins import HistoryPlugin
from zeep.transports import Transport
from zeep.wsse.username import UsernameToken

from adapters.http_api import create_app
from adapters.rest.settings import ApiSettings
from adapters.soap.security import REPLAYED, STALE, NonceCache
from adapters.sql_store import SqlStore
from adapters.sql_tables import messages
from tests.http_client import serving
from tests.test_soap_pcd01 import BINDING, hl7, segments
from tests.test_soap_pcd01 import WSDL as PCD_WSDL
from tests.test_soap_service import SERVICE, WSDL, reading

PASSWORD = "s3cret:with-colon"
USERS = ApiSettings(soap_users=(("epic", PASSWORD), ("cerner", "other-pw")))


@pytest.fixture
def open_url(store: SqlStore) -> Iterator[str]:
    with serving(create_app(lambda: {"status": "ok"}, store=store)) as url:
        yield url


@pytest.fixture
def url(store: SqlStore) -> Iterator[str]:
    with serving(create_app(lambda: {"status": "ok"}, store=store, api=USERS)) as base:
        yield base


def service(base_url: str, version: str = "1.1", wsse: Any = None, basic: tuple[str, str] | None = None,
            plugins: list[Any] | None = None) -> Any:
    session = requests.Session()
    session.auth = basic
    wsdl, path = WSDL[version]
    client = zeep.Client(str(wsdl), settings=zeep.Settings(forbid_dtd=True, strict=True), wsse=wsse,
                         plugins=plugins or [], transport=Transport(session=session, timeout=10, operation_timeout=10))
    return client.create_service(SERVICE, f"{base_url}/soap/{path}")


def pcd01(base_url: str, wsse: Any = None) -> Any:
    client = zeep.Client(str(PCD_WSDL), settings=zeep.Settings(forbid_dtd=True, strict=True), wsse=wsse,
                         transport=Transport(timeout=10, operation_timeout=10))
    return client.create_service(BINDING, f"{base_url}/soap/pcd01")


def stored(store: SqlStore) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(messages)).scalar_one()


def refused(call: Any, version: str = "1.1") -> None:
    with pytest.raises(Fault) as fault:
        call()
    assert fault.value.code.endswith("Client" if version == "1.1" else "Sender")
    assert fault.value.message == "authentication failed"


def reasons(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.reason for r in caplog.records if r.name == "vitalsstream.soap" and hasattr(r, "reason")]


def test_without_users_the_endpoints_are_open(open_url: str, store: SqlStore) -> None:
    assert service(open_url).SubmitVitals(Reading=[reading()]).Duplicate is False
    assert segments(pcd01(open_url).CommunicatePCDData(hl7("pcd01_nibp.hl7")))["MSA"][1] == "AA"
    assert stored(store) == 2


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_http_basic_passes(url: str, version: str) -> None:
    result = service(url, version, basic=("epic", PASSWORD)).SubmitVitals(Reading=[reading()])
    assert result.Duplicate is False and len(result.Readings) == 1


@pytest.mark.parametrize("version", ["1.1", "1.2"])
@pytest.mark.parametrize("use_digest", [False, True])
def test_a_username_token_passes_as_text_or_digest(url: str, version: str, use_digest: bool) -> None:
    client = service(url, version, wsse=UsernameToken("cerner", "other-pw", use_digest=use_digest))
    assert client.SubmitVitals(Reading=[reading()]).Duplicate is False
    assert client.GetReadings(PatientId="P-SOAP")[0].Value == 150.0  # a digest has a new nonce per call


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_a_wrong_password_is_a_client_fault_and_stores_nothing(url: str, store: SqlStore,
                                                               version: str) -> None:
    submit = {"Reading": [reading()]}
    refused(lambda: service(url, version, basic=("epic", "s3cret")).SubmitVitals(**submit), version)
    refused(lambda: service(url, version, basic=("nobody", PASSWORD)).SubmitVitals(**submit), version)
    for use_digest in (False, True):
        token = UsernameToken("epic", "other-pw", use_digest=use_digest)  # cerner's password
        refused(lambda token=token: service(url, version, wsse=token).SubmitVitals(**submit), version)
    right_basic_wrong_token = service(url, version, basic=("epic", PASSWORD), wsse=UsernameToken("epic", "x"))
    refused(lambda: right_basic_wrong_token.SubmitVitals(**submit), version)
    assert stored(store) == 0


@pytest.mark.parametrize("minutes", [-6, 6])
def test_a_created_more_than_5_minutes_off_is_refused(url: str, minutes: int,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    created = datetime.now(UTC) + timedelta(minutes=minutes)
    token = UsernameToken("epic", PASSWORD, use_digest=True, created=created)
    refused(lambda: service(url, wsse=token).SubmitVitals(Reading=[reading()]))
    assert reasons(caplog) == [STALE]
    near = UsernameToken("epic", PASSWORD, use_digest=True, created=datetime.now(UTC) - timedelta(minutes=4))
    assert service(url, wsse=near).SubmitVitals(Reading=[reading()]).Duplicate is False


def test_a_replayed_nonce_is_refused(url: str, store: SqlStore, caplog: pytest.LogCaptureFixture) -> None:
    history = HistoryPlugin()
    client = service(url, wsse=UsernameToken("epic", PASSWORD, use_digest=True), plugins=[history])
    client.SubmitVitals(Reading=[reading()])
    replay = httpx.post(url + "/soap/vitals", content=etree.tostring(history.last_sent["envelope"]), timeout=10,
                        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"SubmitVitals"'})
    assert replay.status_code == 500 and "<faultcode>soap11env:Client</faultcode>" in replay.text
    assert "authentication failed" in replay.text
    same_nonce = UsernameToken("epic", PASSWORD, use_digest=True, nonce="n-1")  # even with a new Created
    service(url, wsse=same_nonce).GetAlerts()
    refused(lambda: service(url, "1.2", wsse=same_nonce).GetAlerts(), "1.2")  # the cache spans endpoints
    assert stored(store) == 1 and reasons(caplog) == [REPLAYED, REPLAYED]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer k-one"}])
def test_no_credential_is_401_with_www_authenticate_basic(url: str, store: SqlStore,
                                                          headers: dict[str, str]) -> None:
    with pytest.raises(TransportError) as error:
        service(url).SubmitVitals(Reading=[reading()])
    assert error.value.status_code == 401
    for path, content_type in [("vitals", "text/xml"), ("vitals12", "application/soap+xml"),
                               ("pcd01", "application/soap+xml")]:
        answer = httpx.post(f"{url}/soap/{path}", content=b"<x/>", timeout=10,
                            headers={"Content-Type": content_type, **headers})
        assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Basic realm=")
    assert stored(store) == 0


def test_pcd01_is_protected_too(url: str, store: SqlStore) -> None:
    with pytest.raises(TransportError) as error:
        pcd01(url).CommunicatePCDData(hl7("pcd01_nibp.hl7"))
    assert error.value.status_code == 401
    refused(lambda: pcd01(url, UsernameToken("epic", "wrong", use_digest=True)).CommunicatePCDData(
        hl7("pcd01_nibp.hl7")), "1.2")
    ack = pcd01(url, UsernameToken("epic", PASSWORD, use_digest=True)).CommunicatePCDData(hl7("pcd01_nibp.hl7"))
    assert segments(ack)["MSA"][1] == "AA" and stored(store) == 1


def test_wsdl_gets_stay_open(url: str) -> None:
    for path in ("vitals", "vitals12", "pcd01"):
        answer = httpx.get(f"{url}/soap/{path}?wsdl", timeout=10)
        assert answer.status_code == 200 and b"definitions" in answer.content
    assert httpx.get(f"{url}/soap/vitals", timeout=10).status_code == 401  # only ?wsdl is open


def test_passwords_never_reach_the_logs(url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for basic, token in [(("epic", "wrong-pw-4711"), None), (None, UsernameToken("epic", "wrong-pw-4711")),
                         (None, UsernameToken("epic", "wrong-pw-4711", use_digest=True, nonce="nonce-4711"))]:
        with pytest.raises(Fault):
            service(url, basic=basic, wsse=token).GetAlerts()
    server = [r for r in caplog.records if not r.name.startswith(("zeep", "urllib3"))]  # zeep logs what it sends
    assert any("wrong user name or password" in r.getMessage() for r in server)
    # The message and the extra fields; not the record's own attributes (a time or thread id may hold 4711).
    standard = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)))
    said = [f"{r.getMessage()} {[v for k, v in vars(r).items() if k not in standard]}" for r in server]
    assert all("4711" not in text and "bm9uY2Ut" not in text for text in said)


def test_the_nonce_cache_forgets_after_its_ttl_and_fails_closed_when_full() -> None:
    now = [0.0]
    cache = NonceCache(ttl=600, capacity=2, clock=lambda: now[0])
    assert cache.remember(("a", b"1")) is None and cache.remember(("a", b"1")) == REPLAYED
    assert cache.remember(("a", b"2")) is None
    assert cache.remember(("a", b"3")) is not None  # full of live nonces: refuse rather than forget one
    now[0] = 600.0
    assert cache.remember(("a", b"1")) is None and cache.remember(("a", b"3")) is None


def test_soap_users_come_from_the_environment() -> None:
    assert ApiSettings.from_env({}).soap_users == ()
    parsed = ApiSettings.from_env({"VITALS_SOAP_USERS": " epic : pw:with:colons , ,cerner:x2,"})
    assert parsed.soap_users == (("epic", "pw:with:colons"), ("cerner", "x2"))
    assert "pw:with" not in repr(parsed) and "x2" not in repr(parsed)


@pytest.mark.parametrize("value", ["epic", "epic:", ":pw", "epic:pw,cerner", "epic:a,epic:b"])
def test_malformed_soap_users_name_the_variable_not_the_password(value: str) -> None:
    with pytest.raises(ValueError, match="VITALS_SOAP_USERS") as error:
        ApiSettings.from_env({"VITALS_SOAP_USERS": value})
    assert "pw" not in str(error.value) and ":a" not in str(error.value)
