"""The dashboard over HTTP: every page on data seeded through the real path, the actions, sign-in and CSRF.

Data goes in as the engine writes it: ORU messages through ``Channel.dispatch`` (alerts evaluated in the
database), outbox rows from the route's targets moved by the real worker one step at a time with a
scripted sender, incidents through ``raise_incident``. Pages that show data run on SQLite and PostgreSQL.
"""
from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.dialects import mssql
from sqlalchemy.engine import make_url

from adapters.dashboard.app import mount_dashboard
from adapters.dashboard.passwords import hash_password, verify_password
from adapters.dashboard.settings import DashboardSettings
from adapters.dashboard.signin_throttle import SignInThrottle
from adapters.dashboard.stats_queries import time_bucket
from adapters.delivery import DeliveryFailed
from adapters.http_api import create_app
from adapters.sql_store import SqlStore
from adapters.sql_tables import alerts, messages, outbox
from engine.channel import Channel, Route
from engine.incidents import raise_incident
from engine.migrations import upgrade
from engine.operator_actions import change_alert_state
from engine.outbox import Backoff, Lane, OutboxWorker
from engine.outbox_rows import OutboxTarget
from tests.messages import oru
from tests.servers import unavailable

ICU = Route(name="icu", outbox=(OutboxTarget("ehr", readings=True, alerts=True),
                                OutboxTarget("pager", readings=False, alerts=True, severities=frozenset({"critical"}))))
WARD = Route(name="ward", sending_applications=frozenset({"WARDMON"}))
DESTINATIONS = [{"name": "ehr", "kind": "ehr_soap", "route": "icu"},
                {"name": "pager", "kind": "notify", "route": "icu"}]
LISTENERS = {"status": "degraded", "channels": [{"route": "icu", "port": 2575, "listening": True, "connections": 2},
                                                {"route": "ward", "port": 2576, "listening": False, "connections": 0}]}


class ScriptedEhr:
    """Records of ``accepted`` patients get an EHR id, ``refused`` ones are refused for good, others time out."""

    def __init__(self, accepted: frozenset[str], refused: frozenset[str] = frozenset()):
        self.accepted, self.refused = accepted, refused

    def send(self, kind: str, key: str, payload: dict[str, Any]) -> str:
        if payload["patient_id"] in self.accepted:
            return f"EHR-{key}"
        if payload["patient_id"] in self.refused:
            raise DeliveryFailed("EHR refused the record: unknown patient", permanent=True)
        raise DeliveryFailed("EHR timed out")

    def close(self) -> None:
        pass


@dataclass
class Seeded:
    store: SqlStore
    alert_ids: dict[tuple[str, str], int]  # (patient, vital) -> alert id
    message_ids: dict[str, int]  # control id -> message id
    now: datetime


def hl7_time(now: datetime, minutes_ago: float) -> str:
    return (now - timedelta(minutes=minutes_ago)).strftime("%Y%m%d%H%M%S")


def seed(store: SqlStore) -> Seeded:
    """icu: P1's heart rate every 10 min, then 150 (critical, open); P2 SpO2 92 (warning, open) and a refused
    message; P3 temperature 34.2 (critical, acknowledged by nurse.kim); P4 a trend (critical, open) with SpO2
    92 (warning, resolved by dr.lee). ward: one message filtered. ehr gets P1 and P4, refuses P2 (2 dead
    letters), times out on P3; pager gets every critical alert. Incidents: MON-9 offline, dead letters at ehr."""
    now = datetime.now(UTC).replace(microsecond=0)
    channel = Channel(store)
    for control_id, patient, minutes_ago, values, device in SENT:
        receipt = channel.dispatch(oru(control_id, patient, hl7_time(now, minutes_ago), values, device=device), ICU)
        assert receipt.status == "STORED", receipt
    refused = oru("BAD-1", "P2", hl7_time(now, 3), [("heart_rate", "abc")])  # type: ignore[list-item]
    assert channel.dispatch(refused, ICU).status == "ERROR"
    assert channel.dispatch(oru("WARD-1", "P5", hl7_time(now, 2), [("heart_rate", 80)]), WARD).status == "FILTERED"
    with store.engine.connect() as conn:
        alert_ids = {(row.patient_id, row.vital): row.id for row in conn.execute(select(alerts))}
        message_ids = {row.control_id: row.id for row in conn.execute(select(messages))}
    change_alert_state(store, alert_ids["P3", "temperature"], "acknowledge", "nurse.kim")
    change_alert_state(store, alert_ids["P4", "spo2"], "resolve", "dr.lee")
    _deliver(store, "ehr", ScriptedEhr(frozenset({"P1", "P4"}), frozenset({"P2"})))
    _deliver(store, "pager", ScriptedEhr(frozenset({"P1", "P2", "P3", "P4"})))
    with store.transaction() as tx:
        raise_incident(tx.conn, "device_offline", "MON-9", "warning", "device MON-9 on route icu: nothing for 12 min",
                       {"device_id": "MON-9", "route": "icu"}, now)
        raise_incident(tx.conn, "dead_letters", "ehr", "warning", "destination ehr: 2 record(s) in the dead letters",
                       {"destination": "ehr", "dead_records": 2}, now)
    return Seeded(store, alert_ids, message_ids, now)


SENT = [("HR-1", "P1", 110, [("heart_rate", 72)], "MON-1"), ("HR-2", "P1", 100, [("heart_rate", 74)], "MON-1"),
        ("HR-3", "P1", 90, [("heart_rate", 76)], "MON-1"), ("HR-4", "P1", 80, [("heart_rate", 75)], "MON-1"),
        ("HR-5", "P1", 70, [("heart_rate", 73)], "MON-1"), ("HR-6", "P1", 60, [("heart_rate", 78)], "MON-1"),
        ("HR-HIGH", "P1", 20, [("heart_rate", 150)], "MON-1"), ("SPO2-LOW", "P2", 15, [("spo2", 92)], "MON-2"),
        ("TEMP-LOW", "P3", 10, [("temperature", 34.2)], "MON-3"),
        ("TREND-1", "P4", 8, [("heart_rate", 70), ("spo2", 98)], "MON-4"),
        ("TREND-2", "P4", 5, [("heart_rate", 95), ("spo2", 92)], "MON-4")]


def _deliver(store: SqlStore, destination: str, sender: ScriptedEhr) -> None:
    lane = Lane(destination, sender, backoff=Backoff(first_seconds=3600, max_seconds=3600))
    worker = OutboxWorker(store, [lane], node="node-a")
    while rows := worker.claim(lane, 10):
        for row in rows:
            worker.deliver(lane, row)


def dashboard_app(store: SqlStore, settings: DashboardSettings | None = None,
                  listeners: dict[str, Any] | None = None, throttle: SignInThrottle | None = None) -> FastAPI:
    """The engine's app as create_app builds it, with the dashboard mounted (the line create_app will hold)."""
    app = create_app(lambda: listeners or LISTENERS, store=store, routes={"icu": ICU, "ward": WARD},
                     destinations=DESTINATIONS)
    mount_dashboard(app, settings, throttle)
    return app


class Browser:
    """Keeps the session cookie between requests, reads CSRF tokens off pages, never follows redirects."""

    def __init__(self, app: FastAPI, client_host: str = "127.0.0.1"):
        self.app = app
        self.client_host = client_host
        self.cookie = ""

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, client=(self.client_host, 50000))
            headers = {"Cookie": f"vs_session={self.cookie}"} if self.cookie else {}
            async with httpx.AsyncClient(transport=transport, base_url="http://dashboard.test",
                                         headers=headers) as client:
                return await client.request(method, url, **kwargs)

        response = asyncio.run(call())
        found = re.search(r"vs_session=([^;]+)", response.headers.get("set-cookie", ""))
        if found:
            self.cookie = found.group(1)
        return response

    def get(self, url: str) -> httpx.Response:
        return self.request("GET", url)

    def token(self) -> str:
        return csrf_of(self.get("/signin").text)

    def post(self, url: str, fields: dict[str, str] | None = None, token: str | None = None) -> httpx.Response:
        body = {"csrf": self.token() if token is None else token, **(fields or {})}
        return self.request("POST", url, data=body)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def row_of(page: str, row_id: str) -> str:
    """The words of one table row."""
    found = re.search(rf'<tr id="{re.escape(row_id)}"[^>]*>(.*?)</tr>', page, re.S)
    assert found, f"no row {row_id}"
    return text_of(found.group(1))


def text_of(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def ok(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text[:2000]
    return response.text



def sqlite_store(path: Path) -> SqlStore:
    store = SqlStore.from_url(f"sqlite:///{path}")
    upgrade(store.engine)
    return store


@contextmanager
def postgres_store(server: str) -> Iterator[SqlStore]:
    """A fresh database on the session's PostgreSQL server, dropped afterwards."""
    name = f"vitals_dash_{uuid.uuid4().hex[:12]}"
    url = make_url(server)
    try:
        admin = psycopg.connect(host=url.host, port=url.port or 5432, user=url.username, password=url.password,
                                dbname=url.database or "postgres", autocommit=True)
    except psycopg.OperationalError as error:
        unavailable(f"PostgreSQL at {url.host} is not reachable: {error}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        store = SqlStore.from_url(url.set(database=name).render_as_string(hide_password=False))
        try:
            upgrade(store.engine)
            yield store
        finally:
            store.close()
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """One seeded database per dialect for the tests that only read (each test that changes data seeds its own)."""
    if request.param == "sqlite":
        store = sqlite_store(tmp_path_factory.mktemp("dashboard") / "vitals.db")
        try:
            yield seed(store)
        finally:
            store.close()
        return
    with postgres_store(request.getfixturevalue("postgres_server")) as store:
        yield seed(store)


@pytest.fixture
def reader(shared: Seeded) -> Browser:
    return Browser(dashboard_app(shared.store))


@pytest.fixture
def seeded(store: SqlStore) -> Seeded:
    return seed(store)


@pytest.fixture
def browser(seeded: Seeded) -> Browser:
    return Browser(dashboard_app(seeded.store))


@pytest.fixture
def on_sqlite(tmp_path: Path) -> Iterator[Seeded]:
    """SQLite only: for what no database decides (sign-in, CSRF, forms)."""
    store = sqlite_store(tmp_path / "vitals.db")
    try:
        yield seed(store)
    finally:
        store.close()


# --- integrations -------------------------------------------------------------------------------------------

def test_integrations_show_a_tile_per_route_and_destination_with_the_reason(reader: Browser) -> None:
    page = ok(reader.get("/"))
    tiles = {name: colour for colour, name in re.findall(r'<article class="tile tile-(\w+)" aria-labelledby="([\w-]+)"',
                                                         page)}
    assert tiles == {"route-icu": "yellow", "route-ward": "red", "destination-ehr": "red", "destination-pager": "green"}
    words = text_of(page)
    assert "Warning icu route 1 of 12 messages refused in 15 min (8.3 %)" in words
    assert "received 12 filtered 0 stored 11 errored 1 queued 2 sent 16" in words  # P3's two rows wait
    assert "Failing ward route listener on port 2576 is down received 1 filtered 1 stored 0 errored 0" in words
    assert ("Failing ehr ehr_soap of route icu 2 dead letters waiting for an operator queued 2 sent 13 dead 2 "
            "failed 15 min 3") in words  # its failures came before its last delivery: not unreachable
    assert "OK pager notify of route icu no failed attempts in 15 min; outbox empty queued 0 sent 3" in words
    assert "ACK latency p50" in words and "Sign-in is off" in words
    assert ok(reader.get("/integrations/tiles?window=1h")).startswith("<h2>Routes</h2>")


def test_quiet_integrations_are_green(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path / "quiet.db")
    receipt = Channel(store).dispatch(oru("Q-1", "P1", hl7_time(datetime.now(UTC), 1), [("heart_rate", 72)]),
                                      Route(name="icu"))
    assert receipt.status == "STORED"
    listeners = {"status": "ok", "channels": [{"route": "icu", "port": 2575, "listening": True, "connections": 1}]}
    app = create_app(lambda: listeners, store=store, routes={"icu": Route(name="icu")})
    mount_dashboard(app)
    page = ok(Browser(app).get("/"))
    store.close()
    assert 'class="tile tile-green" aria-labelledby="route-icu"' in page
    assert "no errors in 15 min; outbox empty" in text_of(page)
    assert "No outbox destinations are configured." in page


# --- alerts -------------------------------------------------------------------------------------------------

def listed_alerts(browser: Browser, query: str = "") -> list[int]:
    page = ok(browser.get(f"/alerts{query}"))
    return [int(found) for found in re.findall(r'<tr id="alert-(\d+)"', page)]


def test_alerts_are_listed_newest_first_and_filtered(reader: Browser, shared: Seeded) -> None:
    ids = shared.alert_ids
    assert listed_alerts(reader) == [ids["P4", "heart_rate,spo2"], ids["P4", "spo2"], ids["P3", "temperature"],
                                     ids["P2", "spo2"], ids["P1", "heart_rate"]]
    assert listed_alerts(reader, "?severity=warning") == [ids["P4", "spo2"], ids["P2", "spo2"]]
    assert listed_alerts(reader, "?kind=trend") == [ids["P4", "heart_rate,spo2"]]
    assert listed_alerts(reader, "?patient=P4&state=open") == [ids["P4", "heart_rate,spo2"]]
    assert listed_alerts(reader, "?state=acknowledged") == [ids["P3", "temperature"]]
    assert listed_alerts(reader, "?severity=bogus&state=") == listed_alerts(reader)  # unknown values: no filter
    since = (shared.now - timedelta(minutes=12)).strftime("%Y-%m-%dT%H:%M")
    until = (shared.now - timedelta(minutes=9)).strftime("%Y-%m-%dT%H:%M")
    assert listed_alerts(reader, f"?from={since}") == [ids["P4", "heart_rate,spo2"], ids["P4", "spo2"],
                                                       ids["P3", "temperature"]]
    assert listed_alerts(reader, f"?from={since}&to={until}") == [ids["P3", "temperature"]]
    page = ok(reader.get("/alerts"))
    assert "critical open P1 heart_rate heart_rate 150 /min above critical high 140 150" in row_of(
        page, f"alert-{ids['P1', 'heart_rate']}")
    assert "acknowledged P3" in row_of(page, f"alert-{ids['P3', 'temperature']}")
    assert "nurse.kim" in row_of(page, f"alert-{ids['P3', 'temperature']}")
    assert "dr.lee" in row_of(page, f"alert-{ids['P4', 'spo2']}")
    assert 'data-live="/alerts/rows?severity=critical"' in ok(reader.get("/alerts?severity=critical"))


def test_only_what_an_alert_allows_is_offered(reader: Browser, shared: Seeded) -> None:
    page = ok(reader.get("/alerts"))
    open_id, acknowledged, resolved = (shared.alert_ids[key] for key in (("P1", "heart_rate"), ("P3", "temperature"),
                                                                          ("P4", "spo2")))
    assert f'id="ack-{open_id}"' in page and f'id="resolve-{open_id}"' in page
    assert f'id="ack-{acknowledged}"' not in page and f'id="resolve-{acknowledged}"' in page
    assert f'id="ack-{resolved}"' not in page and f'id="resolve-{resolved}"' not in page
    assert 'data-confirm="Resolve alert' in page


def test_the_live_rows_follow_the_filters(reader: Browser, shared: Seeded) -> None:
    rows = ok(reader.get("/alerts/rows?severity=critical&kind=threshold"))
    assert re.findall(r'<tr id="alert-(\d+)"', rows) == [str(shared.alert_ids["P3", "temperature"]),
                                                         str(shared.alert_ids["P1", "heart_rate"])]
    assert not rows.startswith("<!doctype") and "No alerts match" in ok(reader.get("/alerts/rows?patient=P9"))


def test_acknowledge_then_resolve_from_the_list_records_who_and_when(browser: Browser, seeded: Seeded) -> None:
    alert_id = seeded.alert_ids["P1", "heart_rate"]
    named = browser.post("/signin", {"name": "nurse.jones", "next": "/alerts"})
    assert (named.status_code, named.headers["location"]) == (303, "/alerts")
    page = ok(browser.get("/alerts"))
    assert "Acting as <strong>nurse.jones</strong>" in page
    done = browser.post(f"/alerts/{alert_id}/acknowledge", {"next": "/alerts?patient=P1"}, token=csrf_of(page))
    assert (done.status_code, done.headers["location"]) == (303, "/alerts?patient=P1")
    page = ok(browser.get("/alerts"))
    assert "acknowledged" in row_of(page, f"alert-{alert_id}") and "nurse.jones" in row_of(page, f"alert-{alert_id}")
    assert f'id="ack-{alert_id}"' not in page
    assert browser.post(f"/alerts/{alert_id}/resolve").status_code == 303
    with seeded.store.engine.connect() as conn:
        alert = conn.execute(select(alerts).where(alerts.c.id == alert_id)).one()
        notices = conn.execute(select(outbox.c.destination).where(outbox.c.alert_id == alert_id,
                                                                  outbox.c.kind == "alert_resolved")).scalars().all()
    assert (alert.state, alert.acknowledged_by, alert.resolved_by) == ("resolved", "nurse.jones", "nurse.jones")
    assert alert.acknowledged_at is not None and alert.resolved_at >= alert.acknowledged_at
    assert sorted(notices) == ["ehr", "pager"]  # whoever was told of the alert is told it is over
    again = browser.post(f"/alerts/{alert_id}/resolve")
    assert again.status_code == 409 and f"alert {alert_id} is already resolved" in again.text
    assert browser.post("/alerts/999999/acknowledge").status_code == 404


# --- the drill-down -----------------------------------------------------------------------------------------

def charts_of(page: str) -> list[str]:
    return re.findall(r"<svg.*?</svg>", page, re.S)


def test_an_alert_drills_down_to_chart_readings_history_and_message(reader: Browser, shared: Seeded) -> None:
    alert_id = shared.alert_ids["P1", "heart_rate"]
    page = ok(reader.get(f"/alerts/{alert_id}"))
    [chart] = charts_of(page)
    assert chart.count("<circle") == 7  # P1's seven heart rates of the last 2 hours
    assert chart.count('fill="#f9d6d5"') == 2 and chart.count('fill="#fdeaa8"') == 2  # both sides shaded
    assert "Bands: critical low 40, warning low 50, warning high 120, critical high 140." in chart
    assert "lowest 72, highest 150, last 150 /min" in chart and "alert raised" in chart
    around = text_of(page.split("Readings around the alert", 1)[1].split("<h2>History", 1)[0])
    assert "150 /min MON-1" in around and "raised this alert" in around and "78" not in around  # 60 min earlier
    history = text_of(page.split("<h2>History</h2>", 1)[1].split("<h2>", 1)[0])
    assert "raised at 150" in history and "alert queued for ehr (sent" in history
    assert "alert queued for pager (sent" in history
    assert f'href="/messages/{shared.message_ids["HR-HIGH"]}"' in page
    [one_hour] = charts_of(ok(reader.get(f"/alerts/{alert_id}?hours=1")))
    assert one_hour.count("<circle") == 1  # 78 was an hour before now


def test_the_history_names_who_acted(reader: Browser, shared: Seeded) -> None:
    acknowledged = text_of(ok(reader.get(f"/alerts/{shared.alert_ids['P3', 'temperature']}")))
    assert "acknowledged by nurse.kim" in acknowledged and "alert queued for ehr (pending)" in acknowledged
    resolved = text_of(ok(reader.get(f"/alerts/{shared.alert_ids['P4', 'spo2']}")))
    assert "resolved by dr.lee" in resolved and "alert resolved queued for ehr (sent" in resolved


def test_a_trend_alert_charts_both_vitals(reader: Browser, shared: Seeded) -> None:
    page = ok(reader.get(f"/alerts/{shared.alert_ids['P4', 'heart_rate,spo2']}"))
    assert len(charts_of(page)) == 2
    assert "heart_rate of patient P4" in page and "spo2 of patient P4" in page
    assert "Bands: critical low 90, warning low 94." in page  # SpO2 has no upper band
    assert reader.get("/alerts/999999").status_code == 404


# --- messages -----------------------------------------------------------------------------------------------

def listed_messages(browser: Browser, query: str = "") -> list[int]:
    return [int(found) for found in re.findall(r'href="/messages/(\d+)" aria-label="Trail',
                                               ok(browser.get(f"/messages{query}")))]


def test_messages_are_searched(reader: Browser, shared: Seeded) -> None:
    ids = shared.message_ids
    assert len(listed_messages(reader)) == 13
    assert listed_messages(reader, "?status=ERROR") == [ids["BAD-1"]]
    assert listed_messages(reader, "?route=ward") == [ids["WARD-1"]]
    assert listed_messages(reader, "?control_id=TEMP-LOW") == [ids["TEMP-LOW"]]
    assert listed_messages(reader, "?patient=P4") == [ids["TREND-2"], ids["TREND-1"]]
    assert listed_messages(reader, "?status=STORED&patient=P2") == [ids["SPO2-LOW"]]
    later = (shared.now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    assert listed_messages(reader, f"?from={later}") == []


def test_the_trail_shows_every_step_and_the_ehr_answer(reader: Browser, shared: Seeded) -> None:
    page = ok(reader.get(f"/messages/{shared.message_ids['HR-HIGH']}"))
    trail = text_of(page.split("<h2>Trail</h2>", 1)[1].split("<h2>", 1)[0])
    for step in ("Received route icu", "Stored 1 reading(s), answered AA", "Alert alert", "Queued for ehr observations",
                 "Queued for pager alert", "Attempt 1 to ehr sent", "answer: EHR-obs:"):
        assert step in trail, step
    assert "MSA|AA|HR-HIGH" in page and "Show the raw content" in page and "PID|||P1" not in page
    refused = text_of(ok(reader.get(f"/messages/{shared.message_ids['SPO2-LOW']}")))
    assert "Attempt 1 to ehr dead" in refused and "error: EHR refused the record: unknown patient" in refused
    assert reader.get("/messages/999999").status_code == 404


def test_raw_content_only_when_asked_and_allowed(reader: Browser, shared: Seeded) -> None:
    url = f"/messages/{shared.message_ids['HR-HIGH']}?raw=1"
    assert "PID|||P1^^^HOSP^MR" in ok(reader.get(url))  # sign-in off, loopback client
    remote = Browser(reader.app, client_host="203.0.113.7")  # sign-in off, a client not on loopback
    page = ok(remote.get(url))
    assert "PID|||" not in page and "shown to operators and admins only" in page


def test_a_refused_message_is_reprocessed(browser: Browser, seeded: Seeded) -> None:
    bad = seeded.message_ids["BAD-1"]
    page = ok(browser.get(f"/messages/{bad}"))
    assert f'action="/messages/{bad}/reprocess"' in page and "data-confirm" in page
    done = browser.post(f"/messages/{bad}/reprocess", token=csrf_of(page))
    assert done.status_code == 303
    new_id = int(done.headers["location"].rsplit("/", 1)[1])
    again = text_of(ok(browser.get(f"/messages/{new_id}")))
    assert f"Reprocess of message {bad}" in again and "Refused" in again  # still not a number
    stored = browser.post(f"/messages/{seeded.message_ids['HR-1']}/reprocess")
    assert stored.status_code == 409 and "is stored already" in stored.text


# --- incidents and the outbox -------------------------------------------------------------------------------

def test_incidents_dead_letters_and_destinations(browser: Browser, seeded: Seeded) -> None:
    page = ok(browser.get("/operations"))
    incidents = re.findall(r'<tr id="incident-(\d+)"', page)
    offline = next(i for i in incidents if "MON-9" in row_of(page, f"incident-{i}"))
    assert len(incidents) == 2
    assert browser.post(f"/incidents/{offline}/acknowledge").status_code == 303
    assert re.search(r"12 min acknowledged .* ×1 local ", row_of(ok(browser.get("/operations")), f"incident-{offline}"))
    assert browser.post(f"/incidents/{offline}/resolve").status_code == 303
    assert browser.post(f"/incidents/{offline}/resolve").status_code == 409
    assert browser.post(f"/incidents/{offline}/delete").status_code == 404

    page = ok(browser.get("/operations"))
    assert f'id="incident-{offline}"' not in page
    dead = re.findall(r'<tr id="dead-(\d+)"', page)
    assert len(dead) == 2 and "EHR refused the record: unknown patient" in page
    assert "ehr ehr_soap icu active 2 0 2 13 0" in row_of(page, "destination-ehr")
    assert browser.post(f"/outbox/{dead[0]}/retry").status_code == 303
    assert browser.post(f"/outbox/{dead[0]}/retry").status_code == 409  # PENDING now
    assert browser.post("/destinations/ehr/retry-dead").status_code == 303
    assert browser.post("/destinations/pager/pause").status_code == 303
    page = ok(browser.get("/operations"))
    assert "No dead letters." in page and "paused by local" in row_of(page, "destination-pager")
    assert 'class="tile tile-yellow" aria-labelledby="destination-pager"' in ok(browser.get("/"))
    assert browser.post("/destinations/pager/resume").status_code == 303
    assert "active" in row_of(ok(browser.get("/operations")), "destination-pager")
    assert browser.post("/destinations/nowhere/pause").status_code == 404
    with seeded.store.engine.connect() as conn:
        assert conn.execute(select(outbox.c.id).where(outbox.c.state == "DEAD")).all() == []


# --- statistics ---------------------------------------------------------------------------------------------

def test_statistics_of_a_range(reader: Browser, shared: Seeded) -> None:
    words = text_of(ok(reader.get("/stats")))
    assert "Alerts raised 5 0 new" in words
    assert "… open now 3 0 new … acknowledged now 1 0 new … resolved now 1 0 new" in words
    assert re.search(r"Time to acknowledge, median \d+ s none acknowledged", words)
    assert "critical threshold 2 0 new critical trend 1 0 new warning threshold 2 0 new" in words
    assert "Top patients by alerts P4: 2; P1: 1; P2: 1; P3: 1" in words
    assert "Top devices by alerts MON-4: 2; MON-1: 1; MON-2: 1; MON-3: 1" in words
    assert "Readings per route in this range Route Readings Busiest hour, per minute icu 13" in words
    since = (shared.now - timedelta(minutes=12)).strftime("%Y-%m-%dT%H:%M")
    short = text_of(ok(reader.get(f"/stats?from={since}")))
    assert "Alerts raised 3 2 +50 %" in short  # P3, P4 twice against P1, P2 in the 12 minutes before
    assert "averaged per minute" in short


def test_the_rate_buckets_compile_for_sql_server() -> None:
    compiled = time_bucket(messages.c.received_at, timedelta(hours=1), "mssql").compile(dialect=mssql.dialect())
    assert str(compiled) == "dateadd(hour, datediff(hour, 0, messages.received_at), 0)"


# --- sign-in, roles, CSRF (SQLite: no database decides these) ----------------------------------------------

PASSWORDS = {"vera": "viewer-password-1", "otto": "operator-password-1", "ada": "admin-password-1"}
USERS = (f"vera:viewer:{hash_password(PASSWORDS['vera'], iterations=1000)},"
         f"otto:operator:{hash_password(PASSWORDS['otto'], iterations=1000)}\n"
         f"ada:admin:{hash_password(PASSWORDS['ada'], iterations=1000)}")
SECRET = "s" * 40


def signed_in_settings(users: str = USERS, secret: str = SECRET) -> DashboardSettings:
    return DashboardSettings.from_env({"VITALS_DASHBOARD_USERS": users, "VITALS_SESSION_SECRET": secret},
                                      listen_host="0.0.0.0")


def sign_in(browser: Browser, name: str, password: str | None = None) -> httpx.Response:
    return browser.post("/signin", {"name": name, "password": PASSWORDS[name] if password is None else password,
                                    "next": "/alerts"})


def test_pages_need_a_signed_in_user(on_sqlite: Seeded) -> None:
    browser = Browser(dashboard_app(on_sqlite.store, signed_in_settings()))
    for url in ("/", "/alerts?state=open", "/alerts/rows", f"/alerts/{on_sqlite.alert_ids['P1', 'heart_rate']}",
                "/messages", "/operations", "/stats"):
        response = browser.get(url)
        assert response.status_code == 303 and response.headers["location"].startswith("/signin?next="), url
    assert browser.get("/alerts?state=open").headers["location"] == "/signin?next=%2Falerts%3Fstate%3Dopen"
    page = ok(browser.get("/signin"))
    assert "Sign-in is off" not in page and 'type="password"' in page
    assert browser.get("/static/dashboard.css").status_code == 200
    assert browser.post(f"/alerts/{on_sqlite.alert_ids['P1', 'heart_rate']}/acknowledge").status_code == 303


def test_a_wrong_password_or_unknown_name_signs_nobody_in(on_sqlite: Seeded) -> None:
    browser = Browser(dashboard_app(on_sqlite.store, signed_in_settings()))
    for name, password in (("otto", "wrong-password"), ("nobody", "whatever")):
        refused = sign_in(browser, name, password)
        assert refused.status_code == 401 and "Wrong name or password." in refused.text
        assert browser.get("/").status_code == 303


def test_a_viewer_reads_but_cannot_act(on_sqlite: Seeded) -> None:
    browser = Browser(dashboard_app(on_sqlite.store, signed_in_settings()))
    signed = sign_in(browser, "vera")
    assert (signed.status_code, signed.headers["location"]) == (303, "/alerts")
    page = ok(browser.get("/alerts"))
    assert "<strong>vera</strong> (viewer)" in page and 'id="ack-' not in page and "Sign-in is off" not in page
    alert_id = on_sqlite.alert_ids["P1", "heart_rate"]
    refused = browser.post(f"/alerts/{alert_id}/acknowledge", token=csrf_of(page))
    assert refused.status_code == 403 and "this action needs an operator" in refused.text
    trail = ok(browser.get(f"/messages/{on_sqlite.message_ids['HR-HIGH']}?raw=1"))
    assert "PID|||" not in trail and "shown to operators and admins only" in trail
    assert "Retry" not in ok(browser.get("/operations"))


def test_an_operator_acts_under_their_own_name(on_sqlite: Seeded) -> None:
    browser = Browser(dashboard_app(on_sqlite.store, signed_in_settings()))
    sign_in(browser, "otto")
    alert_id = on_sqlite.alert_ids["P1", "heart_rate"]
    assert browser.post(f"/alerts/{alert_id}/acknowledge", {"by": "someone.else"}).status_code == 303
    with on_sqlite.store.engine.connect() as conn:
        assert conn.execute(select(alerts.c.acknowledged_by).where(alerts.c.id == alert_id)).scalar_one() == "otto"
    assert "PID|||P1" in ok(browser.get(f"/messages/{on_sqlite.message_ids['HR-HIGH']}?raw=1"))
    admin = Browser(browser.app)
    sign_in(admin, "ada")
    assert admin.post(f"/alerts/{alert_id}/resolve").status_code == 303


def test_forms_need_the_token_of_their_own_session(on_sqlite: Seeded) -> None:
    app = dashboard_app(on_sqlite.store)
    alert_id = on_sqlite.alert_ids["P1", "heart_rate"]
    mallory, nurse = Browser(app), Browser(app)
    assert nurse.post(f"/alerts/{alert_id}/acknowledge", token="").status_code == 403
    assert nurse.post(f"/alerts/{alert_id}/acknowledge", token=mallory.token()).status_code == 403
    stranger = Browser(app)  # no cookie at all: a page of another site posting to this one
    assert stranger.request("POST", f"/alerts/{alert_id}/acknowledge", data={"csrf": nurse.token()}).status_code == 403
    as_json = nurse.request("POST", f"/alerts/{alert_id}/acknowledge", json={"csrf": nurse.token()})
    assert as_json.status_code == 400
    with on_sqlite.store.engine.connect() as conn:
        assert conn.execute(select(alerts.c.state).where(alerts.c.id == alert_id)).scalar_one() == "open"


def test_a_session_is_signed_and_ends_with_the_user(on_sqlite: Seeded) -> None:
    browser = Browser(dashboard_app(on_sqlite.store, signed_in_settings()))
    sign_in(browser, "otto")
    assert browser.get("/").status_code == 200
    kept = browser.cookie
    body, _, mac = kept.partition(".")
    browser.cookie = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + mac
    assert browser.get("/").status_code == 303  # altered
    other = Browser(dashboard_app(on_sqlite.store, signed_in_settings(secret="t" * 40)))
    other.cookie = kept
    assert other.get("/").status_code == 303  # signed with another secret
    changed = USERS.replace(USERS.split("otto:operator:")[1].split("\n")[0],
                            hash_password("a-new-password-2", iterations=1000))
    renewed = Browser(dashboard_app(on_sqlite.store, signed_in_settings(users=changed)))
    renewed.cookie = kept
    assert renewed.get("/").status_code == 303  # the password changed: sessions end
    browser.cookie = kept
    assert browser.post("/signout").headers["location"] == "/signin"
    assert browser.get("/").status_code == 303


def test_after_sign_in_only_paths_of_this_server(on_sqlite: Seeded) -> None:
    browser = Browser(dashboard_app(on_sqlite.store, signed_in_settings()))
    for target in ("https://elsewhere.example/", "//elsewhere.example/x", "javascript:alert(1)"):
        response = browser.post("/signin", {"name": "otto", "password": PASSWORDS["otto"], "next": target})
        assert response.headers["location"] == "/", target


def test_what_pages_show_is_escaped(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path / "escape.db")
    raw = oru("X-1", "<img src=x onerror=alert(1)>", hl7_time(datetime.now(UTC), 1), [("heart_rate", 150)])
    assert Channel(store).dispatch(raw, ICU).status == "STORED"
    browser = Browser(dashboard_app(store))
    pages = [ok(browser.get(url)) for url in ("/alerts", "/alerts/1", "/messages/1?raw=1", "/stats")]
    store.close()
    for page in pages:
        assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_pages_are_not_cached_nor_framed_and_scripts_come_from_us(on_sqlite: Seeded) -> None:
    browser = Browser(dashboard_app(on_sqlite.store))
    response = browser.get("/")
    assert response.headers["cache-control"] == "no-store" and response.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert 'style="' not in response.text
    set_cookie = response.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie
    script = browser.get("/static/dashboard.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert browser.get("/static/../settings.py").status_code == 404
    assert browser.get("/static/other.js").status_code == 404


# --- settings and passwords ---------------------------------------------------------------------------------

def test_users_come_from_the_environment_or_a_file(tmp_path: Path) -> None:
    entry = f"nina:operator:{hash_password('nina-password-1', iterations=1000)}"
    users_file = tmp_path / "users"
    users_file.write_text(f"# on-call staff\n{entry}\n\n")
    settings = DashboardSettings.from_env({"VITALS_DASHBOARD_USERS_FILE": str(users_file),
                                           "VITALS_DASHBOARD_USERS": USERS.split(",")[0]}, listen_host="10.0.0.5")
    assert sorted(settings.users) == ["nina", "vera"] and settings.sign_in
    assert settings.users["nina"].role == "operator" and "pbkdf2" not in repr(settings)
    with pytest.raises(ValueError, match="entry 2 is not name:role") as refused:
        DashboardSettings.from_env({"VITALS_DASHBOARD_USERS": f"{entry},bob:boss:pbkdf2_sha256$1$2$3"})
    assert "bob" not in str(refused.value) and "$1$2$3" not in str(refused.value)  # never quotes the entry
    with pytest.raises(ValueError, match="names the user 'nina' twice"):
        DashboardSettings.from_env({"VITALS_DASHBOARD_USERS": f"{entry},{entry}"})
    with pytest.raises(ValueError, match="cannot be read"):
        DashboardSettings.from_env({"VITALS_DASHBOARD_USERS_FILE": str(tmp_path / "missing")})


def test_no_users_is_only_allowed_on_loopback_or_on_purpose() -> None:
    for host in ("127.0.0.1", "::1", "localhost"):
        assert not DashboardSettings.from_env({}, listen_host=host).sign_in
    with pytest.raises(ValueError, match=r"open to everyone on 0\.0\.0\.0"):
        DashboardSettings.from_env({}, listen_host="0.0.0.0")
    assert not DashboardSettings.from_env({"VITALS_DASHBOARD_ALLOW_OPEN": "true"}, listen_host="0.0.0.0").sign_in
    with pytest.raises(ValueError, match="at least 32 characters"):
        DashboardSettings.from_env({"VITALS_SESSION_SECRET": "short"})
    with pytest.raises(ValueError, match="not an IANA time zone"):
        DashboardSettings.from_env({"VITALS_DASHBOARD_TZ": "Mars/Olympus"})
    assert DashboardSettings.from_env({"VITALS_DASHBOARD_TZ": "Europe/Berlin"}).time_zone.key == "Europe/Berlin"


def test_passwords_are_checked_against_pbkdf2_hashes() -> None:
    encoded = hash_password("correct horse", iterations=1000, salt=b"0123456789abcdef")
    assert encoded.startswith("pbkdf2_sha256$1000$") and verify_password("correct horse", encoded)
    assert not verify_password("wrong horse", encoded)
    for broken in ("", "pbkdf2_sha256$x$y$z", "md5$1000$abc$def", encoded.replace("$1000$", "$10$")):
        assert not verify_password("correct horse", broken)


def test_times_are_shown_and_typed_in_the_dashboards_zone(on_sqlite: Seeded) -> None:
    settings = DashboardSettings.from_env({"VITALS_DASHBOARD_TZ": "America/New_York"})
    browser = Browser(dashboard_app(on_sqlite.store, settings))
    page = ok(browser.get("/alerts"))
    assert "Times in America/New_York" in page
    shown = re.search(r'<time datetime="([^"]+)Z">([^<]+)</time>', page)
    assert shown is not None
    stored_at = datetime.fromisoformat(shown.group(1)).replace(tzinfo=UTC)
    assert shown.group(2) == f"{stored_at.astimezone(settings.time_zone):%Y-%m-%d %H:%M:%S}"
