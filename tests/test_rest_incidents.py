"""Incidents over REST: list (filters, paging, newest opened first), one incident, acknowledge and resolve."""
from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from adapters.http_api import create_app
from adapters.rest import incidents as incidents_api
from adapters.rest.settings import ApiSettings
from adapters.sql_store import SqlStore
from engine.incidents import clear_incident, raise_incident
from tests.http_client import AppClient, serving

T0 = datetime(2026, 3, 2, 10, 0)

# (kind, subject, severity, minutes after T0 it opened)
RAISED = [("destination_down", "ehr", "critical", 0), ("dead_letters", "ehr", "warning", 1),
          ("device_offline", "MON-1", "warning", 2), ("device_offline", "MON-2", "warning", 3),
          ("reconciliation_mismatch", "icu/2026-03-02T09:00Z", "warning", 4)]


def raise_incidents(store: SqlStore) -> None:
    with store.transaction() as tx:
        for kind, subject, severity, minute in RAISED:
            raise_incident(tx.conn, kind, subject, severity, f"{kind} about {subject}", {"subject": subject, "n": 1},
                           T0 + timedelta(minutes=minute))
        clear_incident(tx.conn, "device_offline", "MON-2", T0 + timedelta(minutes=10))


def app_for(store: SqlStore, api: ApiSettings | None = None) -> FastAPI:
    app = create_app(lambda: {"status": "ok"}, store=store, api=api)
    if not any(getattr(route, "path", "") == "/api/v1/incidents" for route in app.routes):
        app.include_router(incidents_api.router)  # until adapters/rest/__init__.py lists it
    return app


@pytest.fixture
def client(store: SqlStore) -> AppClient:
    raise_incidents(store)
    return AppClient(app_for(store))


def listed(client: AppClient, **params: object) -> list[dict]:
    response = client.get("/api/v1/incidents", params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def incident_of(client: AppClient, subject: str) -> dict:
    [incident] = [i for i in listed(client) if i["subject"] == subject and i["kind"] != "dead_letters"]
    return incident


def test_incidents_come_newest_opened_first_with_their_details(client: AppClient) -> None:
    items = listed(client)
    assert [(i["kind"], i["subject"]) for i in items] == [(kind, subject) for kind, subject, _, _ in reversed(RAISED)]
    newest = items[0]
    assert newest == {"id": newest["id"], "kind": "reconciliation_mismatch", "subject": "icu/2026-03-02T09:00Z",
                      "state": "open", "severity": "warning",
                      "summary": "reconciliation_mismatch about icu/2026-03-02T09:00Z",
                      "details": {"subject": "icu/2026-03-02T09:00Z", "n": 1}, "opened_at": "2026-03-02T10:04:00Z",
                      "last_seen_at": "2026-03-02T10:04:00Z", "occurrences": 1, "acknowledged_at": None,
                      "acknowledged_by": None, "resolved_at": None, "resolved_by": None}
    cleared = incident_of(client, "MON-2")
    assert (cleared["state"], cleared["resolved_by"], cleared["resolved_at"]) == ("resolved", "system",
                                                                                  "2026-03-02T10:10:00Z")


def test_filters(client: AppClient) -> None:
    assert [i["subject"] for i in listed(client, kind="device_offline")] == ["MON-2", "MON-1"]
    assert [i["subject"] for i in listed(client, kind="device_offline", state="open")] == ["MON-1"]
    assert [i["subject"] for i in listed(client, state="resolved")] == ["MON-2"]
    assert listed(client, state="acknowledged") == []


def test_paging(client: AppClient) -> None:
    first = client.get("/api/v1/incidents", params={"limit": 2}).json()
    second = client.get("/api/v1/incidents", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    third = client.get("/api/v1/incidents", params={"limit": 2, "cursor": second["next_cursor"]}).json()
    ids = [i["id"] for page in (first, second, third) for i in page["items"]]
    assert ids == [i["id"] for i in listed(client)] and third["next_cursor"] is None


def test_one_incident_and_unknown_ids(client: AppClient) -> None:
    incident = incident_of(client, "MON-1")
    assert client.get(f"/api/v1/incidents/{incident['id']}").json() == incident
    missing = client.get("/api/v1/incidents/999999")
    assert missing.status_code == 404 and missing.json() == {"detail": "there is no incident 999999"}
    for bad in ("0", "x", str(2**70)):
        assert client.get(f"/api/v1/incidents/{bad}").status_code == 422


def test_acknowledge_then_resolve_records_who_and_when(client: AppClient) -> None:
    incident_id = incident_of(client, "ehr")["id"]
    acknowledged = client.post(f"/api/v1/incidents/{incident_id}/acknowledge", json={"by": " ops.kim "})
    assert acknowledged.status_code == 200, acknowledged.text
    body = acknowledged.json()
    assert (body["state"], body["acknowledged_by"], body["resolved_at"]) == ("acknowledged", "ops.kim", None)
    assert body["acknowledged_at"].endswith("Z") and body["details"] == {"subject": "ehr", "n": 1}
    resolved = client.post(f"/api/v1/incidents/{incident_id}/resolve", json={"by": "ops.lee"}).json()
    assert (resolved["state"], resolved["resolved_by"], resolved["acknowledged_by"]) == ("resolved", "ops.lee",
                                                                                        "ops.kim")
    assert [i["id"] for i in listed(client, state="resolved", kind="destination_down")] == [incident_id]


def test_conflicts_are_409_in_plain_words(client: AppClient) -> None:
    incident_id = incident_of(client, "MON-1")["id"]
    assert client.post(f"/api/v1/incidents/{incident_id}/resolve", json={"by": "a"}).status_code == 200
    again = client.post(f"/api/v1/incidents/{incident_id}/resolve", json={"by": "b"})
    assert again.status_code == 409
    assert again.json() == {"detail": f"incident {incident_id} is already resolved: it cannot be resolved now"}
    late = client.post(f"/api/v1/incidents/{incident_id}/acknowledge", json={"by": "c"})
    assert late.status_code == 409
    assert late.json()["detail"] == f"incident {incident_id} is resolved: it cannot be acknowledged now"


def test_unknown_incidents_are_404(client: AppClient) -> None:
    for action in ("acknowledge", "resolve"):
        response = client.post(f"/api/v1/incidents/424242/{action}", json={"by": "ops.kim"})
        assert response.status_code == 404 and response.json() == {"detail": "there is no incident 424242"}


def test_who_acts_is_required(client: AppClient) -> None:
    incident_id = incident_of(client, "MON-1")["id"]
    for body in ({}, {"by": ""}, {"by": "   "}, {"by": "x" * 101}, {"by": 7}, {"by": "a", "x": 1}, None):
        response = client.post(f"/api/v1/incidents/{incident_id}/acknowledge", json=body)
        assert response.status_code == 422 and response.json()["detail"][0]["loc"][0] == "body", body
    assert client.get(f"/api/v1/incidents/{incident_id}").json()["state"] == "open"


def test_bad_filters_are_422(client: AppClient) -> None:
    for params, field in (({"state": "closed"}, "state"), ({"kind": "ehr_slow"}, "kind"), ({"limit": 0}, "limit"),
                          ({"cursor": "nonsense"}, "cursor")):
        response = client.get("/api/v1/incidents", params=params)
        assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query", field], params


def test_changes_need_a_key_when_keys_are_configured(store: SqlStore) -> None:
    raise_incidents(store)
    client = AppClient(app_for(store, ApiSettings(api_keys=("k-one",))))
    incident_id = incident_of(client, "MON-1")["id"]  # reads stay open (auth_reads is off)
    path = f"/api/v1/incidents/{incident_id}/acknowledge"
    assert client.post(path, json={"by": "ops.kim"}).status_code == 401
    allowed = client.post(path, json={"by": "ops.kim"}, headers={"Authorization": "Bearer k-one"})
    assert allowed.status_code == 200 and allowed.json()["state"] == "acknowledged"


def test_served_over_http(store: SqlStore) -> None:
    raise_incidents(store)
    with serving(app_for(store)) as base:
        response = httpx.get(f"{base}/api/v1/incidents", params={"kind": "dead_letters"}, timeout=10)
    assert response.status_code == 200
    assert [i["subject"] for i in response.json()["items"]] == ["ehr"]
