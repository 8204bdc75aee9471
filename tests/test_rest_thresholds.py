"""Alert bands: list every scope, upsert global/patient/device bands, validation, delete overrides."""
from __future__ import annotations

import pytest

from adapters.http_api import create_app
from adapters.sql_store import SqlStore
from engine.channel import Channel, Route
from tests.http_client import AppClient
from tests.messages import oru

BAND = {"critical_low": 30, "warning_low": 45, "warning_high": 160, "critical_high": 180}


@pytest.fixture
def client(store: SqlStore) -> AppClient:
    return AppClient(create_app(lambda: {"status": "ok"}, store=store))


def bands(client: AppClient) -> list[dict]:
    response = client.get("/api/v1/thresholds")
    assert response.status_code == 200
    return response.json()["items"]


def test_the_default_global_bands_are_listed(client: AppClient) -> None:
    items = bands(client)
    assert {i["scope"] for i in items} == {"global"} and len(items) == 9
    spo2 = next(i for i in items if i["vital"] == "spo2")
    assert spo2["unit"] == "%" and (spo2["critical_low"], spo2["warning_high"]) == (90, None)
    assert spo2["updated_at"].endswith("Z") and spo2["patient_id"] is None and spo2["device_id"] is None


def test_put_global_updates_the_row_and_sets_the_unit(client: AppClient) -> None:
    response = client.put("/api/v1/thresholds/global/heart_rate", json=BAND)
    assert response.status_code == 200, response.text
    assert response.json()["unit"] == "/min" and response.json()["warning_high"] == 160
    assert next(i for i in bands(client) if i["vital"] == "heart_rate")["critical_high"] == 180
    assert len(bands(client)) == 9


def test_patient_and_device_bands_are_created_then_updated(client: AppClient) -> None:
    created = client.put("/api/v1/thresholds/patients/P9/heart_rate", json=BAND)
    assert created.status_code == 201 and created.json()["scope"] == "patient"
    updated = client.put("/api/v1/thresholds/patients/P9/heart_rate", json={**BAND, "critical_high": None})
    assert updated.status_code == 200 and updated.json()["critical_high"] is None
    assert updated.json()["id"] == created.json()["id"]
    device = client.put("/api/v1/thresholds/devices/MON-7/temperature",
                        json={"warning_high": 38.5, "critical_high": 40})
    assert device.status_code == 201 and device.json()["unit"] == "Cel" and device.json()["critical_low"] is None
    assert [(i["scope"], i["vital"]) for i in bands(client)][-2:] == [("patient", "heart_rate"),
                                                                       ("device", "temperature")]


def test_a_patient_band_changes_the_alerts_that_patient_gets(client: AppClient, store: SqlStore) -> None:
    assert client.put("/api/v1/thresholds/patients/P9/heart_rate", json=BAND).status_code == 201
    channel = Channel(store)
    for number, patient in enumerate(("P9", "P8")):
        channel.dispatch(oru(f"T-{number}", patient, "20240101100000", [("heart_rate", 150)]), Route())
    assert [a["patient_id"] for a in client.get("/api/v1/alerts").json()["items"]] == ["P8"]


def test_delete_removes_an_override_and_404s_when_there_is_none(client: AppClient) -> None:
    client.put("/api/v1/thresholds/devices/MON-7/spo2", json={"critical_low": 85})
    assert client.delete("/api/v1/thresholds/devices/MON-7/spo2").status_code == 204
    gone = client.delete("/api/v1/thresholds/devices/MON-7/spo2")
    assert gone.status_code == 404 and gone.json() == {"detail": "there is no spo2 band for device MON-7"}
    assert client.delete("/api/v1/thresholds/patients/P1/spo2").json() == {
        "detail": "there is no spo2 band for patient P1"}
    assert client.delete("/api/v1/thresholds/global/spo2").status_code == 405
    assert len(bands(client)) == 9


@pytest.mark.parametrize(("body", "field"), [
    ({"critical_low": 50, "warning_low": 40}, "warning_low"),
    ({"warning_low": 100, "warning_high": 100}, "warning_high"),
    ({"warning_high": 120, "critical_high": 110}, "critical_high"),
    ({"critical_low": 200, "critical_high": 180}, "critical_high"),
    ({"critical_low": "low"}, "critical_low"),
    ({"critical_low": 1, "unit": "mg/dL"}, "unit"),
])
def test_bad_bands_are_422_naming_the_field(client: AppClient, body: dict, field: str) -> None:
    response = client.put("/api/v1/thresholds/global/heart_rate", json=body)
    assert response.status_code == 422
    assert ["body", field] in [error["loc"] for error in response.json()["detail"]]
    assert next(i for i in bands(client) if i["vital"] == "heart_rate")["critical_low"] == 40


def test_equal_critical_and_warning_bounds_are_allowed(client: AppClient) -> None:
    body = {"critical_low": 90, "warning_low": 90, "warning_high": None, "critical_high": None}
    assert client.put("/api/v1/thresholds/global/spo2", json=body).status_code == 200


def test_unknown_vitals_and_overlong_ids_are_422(client: AppClient) -> None:
    response = client.put("/api/v1/thresholds/patients/P1/blood_type", json=BAND)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["path", "vital"]
    too_long = client.put(f"/api/v1/thresholds/patients/{'x' * 101}/spo2", json=BAND)
    assert too_long.status_code == 422 and too_long.json()["detail"][0]["loc"] == ["path", "patient_id"]
    assert client.put("/api/v1/thresholds/global/spo2", content=b"{not json").status_code == 422
