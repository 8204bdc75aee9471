"""Alerts: list (filters, paging, newest last_seen_at first), one alert, acknowledge and resolve."""
from __future__ import annotations

import pytest

from adapters.http_api import create_app
from adapters.sql_store import SqlStore
from engine.channel import Channel, Route
from tests.http_client import AppClient
from tests.messages import oru


def raise_alerts(store: SqlStore) -> None:
    """P1 heart rate critical (10:00), P2 SpO2 warning (10:10), P3 temperature critical (10:20),
    P4 a trend (critical) with an SpO2 warning (10:35)."""
    channel = Channel(store)
    for raw in (oru("A-1", "P1", "20240101100000", [("heart_rate", 150)]),
                oru("A-2", "P2", "20240101101000", [("spo2", 92)]),
                oru("A-3", "P3", "20240101102000", [("temperature", 34.2)]),
                oru("A-4", "P4", "20240101103000", [("heart_rate", 70), ("spo2", 98)]),
                oru("A-5", "P4", "20240101103500", [("heart_rate", 95), ("spo2", 92)])):
        assert channel.dispatch(raw, Route()).status == "STORED"


@pytest.fixture
def client(store: SqlStore) -> AppClient:
    raise_alerts(store)
    return AppClient(create_app(lambda: {"status": "ok"}, store=store))


def listed(client: AppClient, **params: object) -> list[dict]:
    response = client.get("/api/v1/alerts", params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def alert_of(client: AppClient, patient: str, kind: str = "threshold") -> dict:
    [alert] = listed(client, patient_id=patient, kind=kind)
    return alert


def test_alerts_come_most_recently_seen_first(client: AppClient) -> None:
    alerts = listed(client)
    assert [(a["patient_id"], a["kind"]) for a in alerts][-3:] == [("P3", "threshold"), ("P2", "threshold"),
                                                                   ("P1", "threshold")]
    assert {(a["patient_id"], a["kind"]) for a in alerts[:2]} == {("P4", "trend"), ("P4", "threshold")}
    assert alerts[0]["last_seen_at"] == "2024-01-01T10:35:00Z" and alerts[0]["state"] == "open"
    assert alerts[-1]["vital"] == "heart_rate" and alerts[-1]["value"] == 150


def test_filters(client: AppClient) -> None:
    assert {a["patient_id"] for a in listed(client, severity="critical")} == {"P1", "P3", "P4"}
    assert [a["vital"] for a in listed(client, kind="trend")] == ["heart_rate,spo2"]
    assert [a["patient_id"] for a in listed(client, severity="warning", patient_id="P2")] == ["P2"]
    assert listed(client, state="acknowledged") == []
    assert len(listed(client, state="open")) == 5


def test_paging(client: AppClient) -> None:
    first = client.get("/api/v1/alerts", params={"limit": 2}).json()
    second = client.get("/api/v1/alerts", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    third = client.get("/api/v1/alerts", params={"limit": 2, "cursor": second["next_cursor"]}).json()
    ids = [a["id"] for page in (first, second, third) for a in page["items"]]
    assert ids == [a["id"] for a in listed(client)] and third["next_cursor"] is None


def test_one_alert_and_unknown_ids(client: AppClient) -> None:
    alert = alert_of(client, "P3")
    assert client.get(f"/api/v1/alerts/{alert['id']}").json() == alert
    missing = client.get("/api/v1/alerts/999999")
    assert missing.status_code == 404 and missing.json() == {"detail": "there is no alert 999999"}
    assert client.get("/api/v1/alerts/0").status_code == 422
    assert client.get("/api/v1/alerts/x").status_code == 422
    assert client.get(f"/api/v1/alerts/{2**70}").status_code == 422


def test_acknowledge_then_resolve_records_who_and_when(client: AppClient) -> None:
    alert_id = alert_of(client, "P1")["id"]
    acknowledged = client.post(f"/api/v1/alerts/{alert_id}/acknowledge", json={"by": " nurse.jones "})
    assert acknowledged.status_code == 200, acknowledged.text
    body = acknowledged.json()
    assert body["state"] == "acknowledged" and body["acknowledged_by"] == "nurse.jones"
    assert body["acknowledged_at"].endswith("Z") and body["updated_at"] == body["acknowledged_at"]
    assert body["resolved_at"] is None
    resolved = client.post(f"/api/v1/alerts/{alert_id}/resolve", json={"by": "dr.who"}).json()
    assert resolved["state"] == "resolved" and resolved["resolved_by"] == "dr.who"
    assert resolved["acknowledged_by"] == "nurse.jones" and resolved["resolved_at"].endswith("Z")
    assert [a["id"] for a in listed(client, state="resolved")] == [alert_id]


def test_an_open_alert_can_be_resolved_directly(client: AppClient) -> None:
    alert_id = alert_of(client, "P2")["id"]
    resolved = client.post(f"/api/v1/alerts/{alert_id}/resolve", json={"by": "nurse.kim"}).json()
    assert resolved["state"] == "resolved" and resolved["acknowledged_at"] is None


def test_conflicts_are_409_in_plain_words(client: AppClient) -> None:
    alert_id = alert_of(client, "P3")["id"]
    assert client.post(f"/api/v1/alerts/{alert_id}/acknowledge", json={"by": "a"}).status_code == 200
    again = client.post(f"/api/v1/alerts/{alert_id}/acknowledge", json={"by": "b"})
    assert again.status_code == 409
    assert again.json() == {"detail": f"alert {alert_id} is already acknowledged: it cannot be acknowledged now"}
    assert client.post(f"/api/v1/alerts/{alert_id}/resolve", json={"by": "c"}).status_code == 200
    twice = client.post(f"/api/v1/alerts/{alert_id}/resolve", json={"by": "d"})
    assert twice.status_code == 409 and "already resolved" in twice.json()["detail"]
    late = client.post(f"/api/v1/alerts/{alert_id}/acknowledge", json={"by": "e"})
    assert late.status_code == 409
    assert late.json()["detail"] == f"alert {alert_id} is resolved: it cannot be acknowledged now"
    assert client.get(f"/api/v1/alerts/{alert_id}").json()["acknowledged_by"] == "a"  # the first one stays


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_unknown_alerts_are_404(client: AppClient, action: str) -> None:
    response = client.post(f"/api/v1/alerts/424242/{action}", json={"by": "nurse.jones"})
    assert response.status_code == 404 and response.json() == {"detail": "there is no alert 424242"}


@pytest.mark.parametrize("body", [{}, {"by": ""}, {"by": "   "}, {"by": "x" * 101}, {"by": 7},
                                  {"by": "a", "when": "now"}, None])
def test_who_acts_is_required(client: AppClient, body: object) -> None:
    alert_id = alert_of(client, "P1")["id"]
    response = client.post(f"/api/v1/alerts/{alert_id}/acknowledge", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"
    assert client.get(f"/api/v1/alerts/{alert_id}").json()["state"] == "open"


@pytest.mark.parametrize(("params", "field"), [({"state": "closed"}, "state"), ({"severity": "high"}, "severity"),
                                               ({"kind": "rate"}, "kind"), ({"limit": 5000}, "limit")])
def test_bad_filters_are_422(client: AppClient, params: dict, field: str) -> None:
    response = client.get("/api/v1/alerts", params=params)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query", field]
