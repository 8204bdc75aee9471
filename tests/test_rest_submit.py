"""POST /api/v1/devices/{device_id}/readings: through the channel, answered after the commit."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from adapters.http_api import create_app
from adapters.rest.settings import ApiSettings
from adapters.sql_store import SqlStore
from adapters.sql_tables import device_readings, messages
from engine.channel import Channel, Route
from tests.http_client import AppClient
from tests.messages import oru

URL = "/api/v1/devices/MON-7/readings"
BODY = {"device_id": "MON-7", "patient_id": "P-REST", "timestamp": "2024-03-05T10:10:00Z", "heart_rate": 150,
        "spo2": 97, "temperature_c": 37.2, "resp_rate": 16, "bp_systolic": 128, "bp_diastolic": 84,
        "glucose_mmol_l": 5.4}


@pytest.fixture
def client(store: SqlStore) -> AppClient:
    return AppClient(create_app(lambda: {"status": "ok"}, store=store))


def count(store: SqlStore, table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_submitted_vitals_are_stored_and_answered_with_their_alerts(client: AppClient, store: SqlStore) -> None:
    response = client.post(URL, json=BODY)
    assert response.status_code == 201, response.text
    body = response.json()
    assert {r["vital"]: r["value"] for r in body["readings"]} == {
        "heart_rate": 150.0, "spo2": 97.0, "temperature": 37.2, "resp_rate": 16.0, "bp_systolic": 128.0,
        "bp_diastolic": 84.0, "glucose": 5.4}
    assert all(r["observed_at"] == "2024-03-05T10:10:00Z" and r["device_id"] == "MON-7" for r in body["readings"])
    assert [(a["vital"], a["severity"]) for a in body["alerts"]] == [("heart_rate", "critical")]
    with store.engine.connect() as conn:
        row = conn.execute(select(messages)).one()
    assert (row.status, row.sending_application, row.sending_facility, row.message_type) == (
        "STORED", "REST", "MON-7", "REST")
    assert row.raw.startswith("{") and row.route == "rest"


def test_a_retry_with_the_same_idempotency_key_stores_nothing_new(client: AppClient, store: SqlStore) -> None:
    first = client.post(URL, json=BODY, headers={"Idempotency-Key": "k-1"})
    again = client.post(URL, json=BODY, headers={"Idempotency-Key": "k-1"})
    other = client.post(URL, json={**BODY, "heart_rate": 70}, headers={"Idempotency-Key": "k-1"})
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 409)
    assert again.json() == first.json()
    assert "already used for another body" in other.json()["detail"]
    assert count(store, device_readings) == 7


@pytest.mark.parametrize("change, field", [
    ({"device_id": "MON-8"}, "device_id"),
    ({"spo2": 150}, "spo2"),
    ({"heart_rate": "fast"}, "heart_rate"),
    ({"pulse": 70}, "pulse"),
    ({"timestamp": "yesterday"}, "timestamp"),
    ({"patient_id": ""}, "patient_id"),
])
def test_bad_bodies_are_422_naming_the_field_and_store_nothing(client: AppClient, store: SqlStore, change: dict,
                                                                field: str) -> None:
    response = client.post(URL, json={**BODY, **change})
    assert response.status_code == 422
    assert field in str(response.json()["detail"])
    assert count(store, messages) == 0


def test_a_body_without_any_vital_is_422(client: AppClient) -> None:
    response = client.post(URL, json={"patient_id": "P", "timestamp": "2024-03-05T10:10:00"})
    assert response.status_code == 422 and "no vital sign given" in response.text


def test_writes_need_a_key_once_keys_are_configured(store: SqlStore) -> None:
    client = AppClient(create_app(lambda: {"status": "ok"}, store=store, api=ApiSettings(api_keys=("s3cret",))))
    assert client.post(URL, json=BODY).status_code == 401
    assert client.post(URL, json=BODY, headers={"Authorization": "Bearer s3cret"}).status_code == 201


def test_the_same_reading_by_mllp_and_by_rest_gives_the_same_canonical_row(client: AppClient,
                                                                          store: SqlStore) -> None:
    Channel(store).dispatch(oru("SAME-1", "P-SAME", "20240305101000", [("heart_rate", 88), ("spo2", 95)],
                                device="MON-7"), Route())
    client.post(URL, json={"patient_id": "P-SAME", "timestamp": "2024-03-05T10:10:00Z", "heart_rate": 88,
                           "spo2": 95})
    canonical = (device_readings.c.patient_id, device_readings.c.device_id, device_readings.c.vital,
                 device_readings.c.value, device_readings.c.unit, device_readings.c.observed_at)
    with store.engine.connect() as conn:
        rows = conn.execute(select(*canonical, device_readings.c.source_system)
                            .order_by(device_readings.c.source_system, device_readings.c.vital)).all()
    by_source = {system: [tuple(r)[:-1] for r in rows if r.source_system == system] for system in ("LN", "REST")}
    assert by_source["LN"] == by_source["REST"] and len(by_source["LN"]) == 2


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+01:00", "1969-12-31T23:59:59Z", "2999-01-01T00:00:00Z"])
def test_implausible_timestamps_are_422(client: AppClient, stamp: str) -> None:
    response = client.post(URL, json={**BODY, "timestamp": stamp})
    assert response.status_code == 422 and "timestamp" in response.text
