"""API keys: off without keys; with keys every write needs one, reads only when asked; settings parsing."""
from __future__ import annotations

from typing import Any

import pytest

from adapters.http_api import create_app
from adapters.rest.settings import ApiSettings
from adapters.sql_store import SqlStore
from tests.http_client import AppClient

KEYS = ApiSettings(api_keys=("k-one", "k-two"))
WRITES = [("PUT", "/api/v1/thresholds/global/spo2", {"critical_low": 88}),
          ("PUT", "/api/v1/thresholds/patients/P1/spo2", {"critical_low": 88}),
          ("DELETE", "/api/v1/thresholds/devices/D1/spo2", None),
          ("POST", "/api/v1/alerts/1/acknowledge", {"by": "n"}),
          ("POST", "/api/v1/alerts/1/resolve", {"by": "n"})]
READS = ["/api/v1/readings", "/api/v1/alerts", "/api/v1/alerts/1", "/api/v1/thresholds"]


def client(store: SqlStore, api: ApiSettings | None, headers: dict[str, Any] | None = None) -> AppClient:
    return AppClient(create_app(lambda: {"status": "ok"}, store=store, api=api), headers)


@pytest.mark.parametrize(("method", "url", "body"), WRITES)
def test_writes_need_a_key_when_keys_are_set(store: SqlStore, method: str, url: str, body: dict | None) -> None:
    refused = client(store, KEYS).request(method, url, json=body)
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert "API key" in refused.json()["detail"]
    for headers in ({"Authorization": "Bearer wrong"}, {"X-API-Key": "k-one "}, {"Authorization": "Basic k-one"},
                    {"X-API-Key": "ключ".encode()}):
        assert client(store, KEYS, headers).request(method, url, json=body).status_code == 401
    for headers in ({"Authorization": "Bearer k-two"}, {"authorization": "bearer k-one"}, {"X-API-Key": "k-one"}):
        assert client(store, KEYS, headers).request(method, url, json=body).status_code != 401


@pytest.mark.parametrize(("method", "url", "body"), WRITES)
def test_without_keys_writes_are_open(store: SqlStore, method: str, url: str, body: dict | None) -> None:
    assert client(store, None).request(method, url, json=body).status_code in (200, 201, 404)


def test_a_refused_write_changes_nothing_and_is_refused_before_validation(store: SqlStore) -> None:
    api = client(store, KEYS)
    assert api.put("/api/v1/thresholds/global/blood_type", json={"critical_low": "x"}).status_code == 401
    assert api.put("/api/v1/thresholds/global/spo2", json={"critical_low": 50}).status_code == 401
    assert next(i for i in api.get("/api/v1/thresholds").json()["items"] if i["vital"] == "spo2")["critical_low"] == 90


def test_reads_stay_open_unless_asked(store: SqlStore) -> None:
    open_reads = client(store, KEYS)
    assert [open_reads.get(url).status_code for url in READS] == [200, 200, 404, 200]
    closed = ApiSettings(api_keys=("k-one",), auth_reads=True)
    assert {client(store, closed).get(url).status_code for url in READS} == {401}
    assert [client(store, closed, {"X-API-Key": "k-one"}).get(url).status_code for url in READS] == [200, 200, 404, 200]
    assert client(store, closed).get("/healthz").status_code == 200  # probes stay open
    assert client(store, closed).get("/readyz").status_code == 200


def test_settings_from_the_environment() -> None:
    assert ApiSettings.from_env({}) == ApiSettings()
    parsed = ApiSettings.from_env({"VITALS_API_KEYS": " a , ,b,", "VITALS_API_AUTH_READS": "TRUE"})
    assert parsed.api_keys == ("a", "b") and parsed.auth_reads
    assert "a" not in repr(parsed).replace("auth_reads", "").replace("ApiSettings", "")
    assert not ApiSettings.from_env({"VITALS_API_KEYS": "a", "VITALS_API_AUTH_READS": "false"}).auth_reads
    with pytest.raises(ValueError, match="VITALS_API_AUTH_READS='maybe' is not a boolean"):
        ApiSettings.from_env({"VITALS_API_KEYS": "a", "VITALS_API_AUTH_READS": "maybe"})
    with pytest.raises(ValueError, match="needs VITALS_API_KEYS"):
        ApiSettings.from_env({"VITALS_API_AUTH_READS": "true"})
