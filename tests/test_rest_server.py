"""The API over a real uvicorn socket: reads, auth, readiness, and two nurses acknowledging at once."""
from __future__ import annotations

import threading

import httpx
import pytest

from adapters.http_api import create_app
from adapters.rest import health
from adapters.rest.settings import ApiSettings
from adapters.sql_store import SqlStore
from engine.channel import Channel, Route
from tests.http_client import AppClient, serving
from tests.messages import oru


def alert_id(store: SqlStore) -> int:
    assert Channel(store).dispatch(oru("S-1", "P1", "20240101100000", [("heart_rate", 150)]), Route()).alerts == 1
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT id FROM alerts").scalar_one())


def test_two_nurses_acknowledging_at_once_get_one_200_and_one_409(store: SqlStore) -> None:
    number = alert_id(store)
    start = threading.Barrier(2)
    answers: list[httpx.Response] = []

    def nurse(name: str, url: str) -> None:
        start.wait(10)
        answers.append(httpx.post(f"{url}/api/v1/alerts/{number}/acknowledge", json={"by": name}, timeout=30))

    with serving(create_app(lambda: {"status": "ok"}, store=store)) as url:
        nurses = [threading.Thread(target=nurse, args=(name, url)) for name in ("nurse.a", "nurse.b")]
        for thread in nurses:
            thread.start()
        for thread in nurses:
            thread.join(60)
        final = httpx.get(f"{url}/api/v1/alerts/{number}", timeout=10).json()
    assert sorted(answer.status_code for answer in answers) == [200, 409]
    winner = next(answer for answer in answers if answer.status_code == 200).json()["acknowledged_by"]
    assert final["state"] == "acknowledged" and final["acknowledged_by"] == winner


def test_reads_and_authenticated_writes_over_the_socket(store: SqlStore) -> None:
    number = alert_id(store)
    app = create_app(lambda: {"status": "ok"}, store=store, api=ApiSettings(api_keys=("s3cret",)))
    with serving(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/readyz").json() == {"status": "ready"}
        assert client.get("/api/v1/readings").json()["items"][0]["value"] == 150
        refused = client.post(f"/api/v1/alerts/{number}/resolve", json={"by": "n"})
        assert refused.status_code == 401 and "www-authenticate" in refused.headers
        done = client.post(f"/api/v1/alerts/{number}/resolve", json={"by": "n"},
                           headers={"Authorization": "Bearer s3cret"})
        assert done.status_code == 200 and done.json()["state"] == "resolved"


def test_readyz_is_503_with_the_reason_when_the_database_is_down() -> None:
    down = SqlStore.from_url("postgresql+psycopg://vitals@127.0.0.1:9/none")
    try:
        response = AppClient(create_app(lambda: {"status": "ok"}, store=down)).get("/readyz")
        reads = AppClient(create_app(lambda: {"status": "ok"}, store=down)).get("/api/v1/alerts")
    finally:
        down.close()
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "reason": "the database is not reachable (OperationalError)"}
    assert reads.status_code == 503 and reads.json() == {"detail": "the database is not available (OperationalError)"}


def test_readyz_is_503_when_the_database_does_not_answer_in_time(sqlite_url: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    monkeypatch.setattr(health, "ping", lambda _store: release.wait(30))
    monkeypatch.setattr(health, "READY_TIMEOUT_SECONDS", 0.05)
    store = SqlStore.from_url(sqlite_url)
    try:
        response = AppClient(create_app(lambda: {"status": "ok"}, store=store)).get("/readyz")
    finally:
        release.set()
        store.close()
    assert response.status_code == 503 and response.json()["reason"] == "the database did not answer within 0.05 s"


def test_without_a_store_only_the_probes_are_served() -> None:
    client = AppClient(create_app(lambda: {"status": "ok"}))
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").json() == {"status": "unavailable", "reason": "no database is configured"}
    assert client.get("/api/v1/alerts").status_code == 404
