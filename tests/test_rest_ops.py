"""Operations API: /api/v1/channels, /api/v1/messages (search, trail, the raw-content rule) and /metrics."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from adapters.http_api import create_app
from adapters.rest.auth import is_loopback
from adapters.rest.channels import percentile
from adapters.rest.settings import ApiSettings
from adapters.sql_store import SqlStore
from engine.channel import Channel, Receipt, Route
from engine.outbox_actions import retry
from engine.outbox_rows import OutboxTarget
from tests.http_client import AppClient
from tests.messages import fixture, oru

WARD, ICU = Route(name="ward"), Route(name="icu")
PICKY = Route(name="picky", sending_applications=frozenset({"OTHERMON"}))  # turns TESTMON away
CONFIGURED = {name: Route(name=name) for name in ("ward", "icu", "idle")}
KEYS = ApiSettings(api_keys=("k-one",))


class Ticking:
    """A clock that starts five minutes ago and moves 10 ms each time it is read: every row gets its own
    time, in the order sent, and a latency above zero."""

    def __init__(self) -> None:
        self.moment = datetime.now(UTC) - timedelta(minutes=5)

    def __call__(self) -> datetime:
        self.moment += timedelta(milliseconds=10)
        return self.moment


@dataclass
class Sent:
    store: SqlStore
    receipts: dict[str, Receipt]

    def id(self, name: str) -> int:
        message_id = self.receipts[name].message_id
        assert message_id is not None
        return message_id


@pytest.fixture
def sent(store: SqlStore) -> Sent:
    channel = Channel(store, clock=Ticking())
    first = oru("C-1", "P1", "20240101100000", [("heart_rate", 150), ("spo2", 97)], device="MON-A")
    plan = {
        "p1": (first, WARD),  # stored, raises a critical heart-rate alert
        "p1_again": (oru("C-2", "P1", "20240101100500", [("heart_rate", 155)], device="MON-A"), WARD),  # updates it
        "p2": (oru("C-3", "P2", "20240101100000", [("spo2", 96)], device="MON-B"), ICU),
        "dup": (oru("C-1", "P1", "20240101101000", [("heart_rate", 80)], device="MON-A"), WARD),  # key reused
        "resend": (first, WARD),  # an exact resend: no new row
        "nonnumeric": (fixture("bad/nonnumeric_value.hl7"), ICU),  # ERROR, AE
        "adt": (fixture("bad/unsupported_type_adt.hl7"), ICU),  # ERROR, AR
        "no_msh": (fixture("bad/no_msh.hl7"), ICU),  # ERROR, no ACK
        "ack": (fixture("bad/ack_message.hl7"), ICU),  # FILTERED, no ACK
        "picky": (oru("C-9", "P3", "20240101100000", [("heart_rate", 70)]), PICKY),  # FILTERED, AR
        "enhanced": (fixture("enhanced_al_al.hl7"), WARD),  # STORED, CA then AA
    }
    receipts = {name: channel.dispatch(raw, route, peer="10.0.0.9:4000") for name, (raw, route) in plan.items()}
    assert [r.status for r in receipts.values()] == ["STORED", "STORED", "STORED", "ERROR", "STORED", "ERROR",
                                                     "ERROR", "ERROR", "FILTERED", "FILTERED", "STORED"]
    assert receipts["resend"].duplicate and receipts["resend"].message_id == receipts["p1"].message_id
    return Sent(store, receipts)


def api(sent: Sent, settings: ApiSettings | None = None, headers: dict[str, Any] | None = None) -> AppClient:
    return AppClient(create_app(lambda: {"status": "ok"}, store=sent.store, api=settings, routes=CONFIGURED),
                     headers)


def from_address(sent: Sent, host: str, url: str, settings: ApiSettings | None = None) -> httpx.Response:
    """A request from another client address (AppClient always comes from 127.0.0.1)."""
    app = create_app(lambda: {"status": "ok"}, store=sent.store, api=settings)

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(host, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            return await client.get(url)

    return asyncio.run(call())


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


# --- channels -----------------------------------------------------------------------------------------------

def test_channels_count_each_route_in_one_entry(sent: Sent) -> None:
    channels = {c["route"]: c for c in ok(api(sent).get("/api/v1/channels"))["items"]}
    assert list(channels) == ["icu", "idle", "picky", "ward"]
    counters = {route: (c["received"], c["stored"], c["filtered"], c["errored"], c["queued"], c["configured"])
                for route, c in channels.items()}
    assert counters == {"ward": (4, 3, 0, 1, 0, True), "icu": (5, 1, 1, 3, 0, True),
                        "picky": (1, 0, 1, 0, 0, False), "idle": (0, 0, 0, 0, 0, True)}
    assert channels["idle"]["last_received_at"] is None and channels["idle"]["ack_latency_ms"]["p50"] is None
    ward = channels["ward"]
    assert ward["last_received_at"].endswith("Z")
    latency = ward["ack_latency_ms"]
    assert latency["window_minutes"] == 15 and latency["samples"] == 4
    assert 0 < latency["p50"] <= latency["p90"] < 1000


def test_channels_without_configured_routes_show_what_the_table_holds(sent: Sent) -> None:
    app = AppClient(create_app(lambda: {"status": "ok"}, store=sent.store))
    assert [c["route"] for c in ok(app.get("/api/v1/channels"))["items"]] == ["icu", "picky", "ward"]


def test_percentile_is_the_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0], 0.9) == 3.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.0
    assert percentile([float(n) for n in range(1, 11)], 0.9) == 9.0


# --- messages: search ---------------------------------------------------------------------------------------

def messages(client: AppClient, **params: Any) -> list[dict[str, Any]]:
    return ok(client.get("/api/v1/messages", params=params))["items"]


def test_messages_come_newest_first_without_content(sent: Sent) -> None:
    items = messages(api(sent))
    assert len(items) == 10  # the exact resend made no row
    assert [i["received_at"] for i in items] == sorted((i["received_at"] for i in items), reverse=True)
    assert items[0]["id"] == sent.id("enhanced") and items[-1]["id"] == sent.id("p1")
    for item in items:
        assert "raw" not in item and "ack" not in item
    first = items[-1]
    assert (first["route"], first["control_id"], first["status"], first["ack_code"], first["reading_count"]) \
        == ("ward", "C-1", "STORED", "AA", 2)
    assert first["peer"] == "10.0.0.9:4000" and first["processed_at"] >= first["received_at"]


def test_message_filters_combine(sent: Sent) -> None:
    client = api(sent)
    ids = lambda **params: [i["id"] for i in messages(client, **params)]  # noqa: E731
    assert ids(control_id="C-1") == [sent.id("dup"), sent.id("p1")]
    assert ids(status="FILTERED") == [sent.id("picky"), sent.id("ack")]
    assert ids(status="ERROR", route="icu") == [sent.id("no_msh"), sent.id("adt"), sent.id("nonnumeric")]
    assert ids(route="picky", status="STORED") == []
    # patient: the messages that stored a reading for P1 (the refused duplicate stored none)
    assert ids(patient_id="P1") == [sent.id("p1_again"), sent.id("p1")]
    assert ids(patient_id="nobody") == []


def test_messages_from_is_inclusive_to_exclusive(sent: Sent) -> None:
    client = api(sent)
    every = messages(client)
    times = {i["id"]: i["received_at"] for i in every}
    since, until = times[sent.id("p2")], times[sent.id("adt")]
    window = [i["id"] for i in messages(client, **{"from": since, "to": until})]
    assert window == [sent.id("nonnumeric"), sent.id("dup"), sent.id("p2")]
    naive = since.removesuffix("Z")  # a time without an offset is UTC
    assert [i["id"] for i in messages(client, **{"from": naive, "to": until})] == window


def test_message_paging_walks_every_row_once_and_keeps_filters(sent: Sent) -> None:
    client = api(sent)
    everything = [i["id"] for i in messages(client)]
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        body = ok(client.get("/api/v1/messages", params=params))
        seen += [i["id"] for i in body["items"]]
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert seen == everything
    first = ok(client.get("/api/v1/messages", params={"route": "icu", "limit": 2}))
    rest = messages(client, route="icu", limit=10, cursor=first["next_cursor"])
    assert [i["id"] for i in first["items"] + rest] == [i["id"] for i in messages(client, route="icu")]


@pytest.mark.parametrize(("params", "field"), [
    ({"status": "RECEIVED"}, "status"), ({"limit": 0}, "limit"), ({"from": "yesterday"}, "from"),
    ({"to": "2024-02-30"}, "to"), ({"cursor": "nope"}, "cursor"), ({"route": ""}, "route"),
    ({"control_id": ""}, "control_id"), ({"patient_id": "x" * 101}, "patient_id"),
])
def test_bad_message_parameters_are_422_naming_the_field(sent: Sent, params: dict, field: str) -> None:
    response = api(sent).get("/api/v1/messages", params=params)
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["query", field]]


# --- messages: the trail of one -----------------------------------------------------------------------------

def test_the_trail_holds_readings_alerts_acks_and_duplicates(sent: Sent) -> None:
    trail = ok(api(sent).get(f"/api/v1/messages/{sent.id('p1')}"))
    assert set(trail) == {"message", "raw", "acks", "readings", "alerts", "duplicates"}
    assert trail["message"]["id"] == sent.id("p1") and "raw" not in trail["message"] and trail["raw"] is None
    assert sorted((r["vital"], r["value"]) for r in trail["readings"]) == [("heart_rate", 150), ("spo2", 97)]
    assert [(a["vital"], a["severity"], a["occurrences"]) for a in trail["alerts"]] == [("heart_rate", "critical", 2)]
    assert len(trail["acks"]) == 1 and trail["acks"][0].startswith("MSH|") and "\rMSA|AA|C-1" in trail["acks"][0]
    assert [(d["id"], d["status"], d["ack_code"]) for d in trail["duplicates"]] == [(sent.id("dup"), "ERROR", "AE")]


def test_an_alert_shows_on_the_message_that_updated_it(sent: Sent) -> None:
    client = api(sent)
    first = ok(client.get(f"/api/v1/messages/{sent.id('p1')}"))["alerts"]
    later = ok(client.get(f"/api/v1/messages/{sent.id('p1_again')}"))
    assert [a["id"] for a in later["alerts"]] == [a["id"] for a in first]
    assert later["alerts"][0]["last_reading_id"] == later["readings"][0]["id"] and later["duplicates"] == []


def test_the_trail_of_other_outcomes(sent: Sent) -> None:
    client = api(sent)
    enhanced = ok(client.get(f"/api/v1/messages/{sent.id('enhanced')}"))
    assert [ack.split("\rMSA|")[1][:2] for ack in enhanced["acks"]] == ["CA", "AA"]
    dup = ok(client.get(f"/api/v1/messages/{sent.id('dup')}"))
    assert dup["message"]["duplicate_of"] == sent.id("p1") and dup["readings"] == dup["alerts"] == []
    assert "205" in dup["acks"][0] and dup["message"]["error"].startswith("205 ")
    no_msh = ok(client.get(f"/api/v1/messages/{sent.id('no_msh')}"))
    assert no_msh["acks"] == [] and no_msh["message"]["status"] == "ERROR"


@pytest.mark.parametrize(("path", "status"), [("999999", 404), ("0", 422), ("-3", 422), ("abc", 422),
                                              (str(2**63), 422)])
def test_an_unknown_or_bad_message_id(sent: Sent, path: str, status: int) -> None:
    response = api(sent).get(f"/api/v1/messages/{path}")
    assert response.status_code == status
    if status == 404:
        assert response.json() == {"detail": "there is no message 999999"}


# --- the raw-content rule -----------------------------------------------------------------------------------

def test_without_keys_raw_is_answered_to_loopback_clients_that_ask(sent: Sent) -> None:
    url = f"/api/v1/messages/{sent.id('p1')}"
    assert ok(api(sent).get(url, params={"raw": "true"}))["raw"].startswith("MSH|^~\\&|TESTMON|WARD")
    assert ok(api(sent).get(url))["raw"] is None  # not asked
    remote = from_address(sent, "10.1.2.3", f"{url}?raw=true")
    assert remote.status_code == 403 and "loopback" in remote.json()["detail"]
    assert ok(from_address(sent, "10.1.2.3", url))["raw"] is None
    assert from_address(sent, "::1", f"{url}?raw=true").status_code == 200


def test_with_keys_raw_needs_a_valid_key_even_from_loopback(sent: Sent) -> None:
    url = f"/api/v1/messages/{sent.id('p1')}?raw=true"
    for headers in (None, {"X-API-Key": "wrong"}, {"Authorization": "Basic k-one"}):
        refused = api(sent, KEYS, headers).get(url)
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    for headers in ({"X-API-Key": "k-one"}, {"Authorization": "Bearer k-one"}):
        assert ok(api(sent, KEYS, headers).get(url))["raw"].startswith("MSH|")
    assert ok(api(sent, KEYS).get(url.removesuffix("?raw=true")))["raw"] is None  # reads stay open


def test_reads_closed_by_settings_close_the_new_endpoints(sent: Sent) -> None:
    closed = ApiSettings(api_keys=("k-one",), auth_reads=True)
    urls = ["/api/v1/channels", "/api/v1/messages", f"/api/v1/messages/{sent.id('p1')}", "/metrics"]
    assert {api(sent, closed).get(url).status_code for url in urls} == {401}
    assert {api(sent, closed, {"X-API-Key": "k-one"}).get(url).status_code for url in urls} == {200}


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True),
                                                ("::ffff:127.0.0.1", True), ("10.0.0.1", False), ("::2", False),
                                                ("testclient", False), ("", False)])
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


# --- metrics ------------------------------------------------------------------------------------------------

def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_parse_and_agree_with_the_tables(sent: Sent) -> None:
    response = api(sent).get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    assert found[("vitalsstream_messages_total", (("route", "ward"), ("status", "STORED")))] == 3
    assert found[("vitalsstream_messages_total", (("route", "icu"), ("status", "ERROR")))] == 3
    assert found[("vitalsstream_messages_total", (("route", "picky"), ("status", "FILTERED")))] == 1
    assert found[("vitalsstream_acks_total", (("code", "AE"), ("route", "ward")))] == 1
    assert found[("vitalsstream_acks_total", (("code", "AR"), ("route", "icu")))] == 1
    assert found[("vitalsstream_acks_total", (("code", "AA"), ("route", "ward")))] == 3  # enhanced counts its last ACK
    assert found[("vitalsstream_alerts_unresolved", (("severity", "critical"), ("state", "open")))] >= 1
    histogram = "vitalsstream_ack_latency_last_hour_seconds"
    assert found[(f"{histogram}_count", (("route", "icu"),))] == 5
    assert found[(f"{histogram}_bucket", (("le", "+Inf"), ("route", "ward")))] == 4
    assert 0 < found[(f"{histogram}_sum", (("route", "ward"),))] < 4
    buckets = [v for (name, labels), v in found.items()
               if name == f"{histogram}_bucket" and ("route", "ward") in labels]
    assert buckets == sorted(buckets)


def test_metrics_of_an_empty_database(store: SqlStore) -> None:
    found = samples(AppClient(create_app(lambda: {"status": "ok"}, store=store)).get("/metrics").text)
    assert found == {}


def test_outbox_rows_waiting_show_in_metrics_and_channels(store: SqlStore) -> None:
    route = Route(name="ward", outbox=(OutboxTarget("ehr", readings=True, alerts=True),))
    channel = Channel(store)
    channel.dispatch(oru("Q-1", "P1", "20240101100000", [("heart_rate", 150)]), route)  # readings and an alert
    channel.dispatch(oru("Q-2", "P2", "20240101100000", [("heart_rate", 70)]), route)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE outbox SET state = 'DEAD' WHERE patient_id = 'P2'"))
    client = AppClient(create_app(lambda: {"status": "ok"}, store=store, routes={"ward": route}))
    found = samples(client.get("/metrics").text)
    assert found[("vitalsstream_outbox_depth", (("destination", "ehr"),))] == 2
    assert found[("vitalsstream_outbox_dead", (("destination", "ehr"),))] == 1
    [ward] = ok(client.get("/api/v1/channels"))["items"]
    assert ward["queued"] == 2
    with store.engine.connect() as conn:
        dead = conn.execute(text("SELECT id FROM outbox WHERE state = 'DEAD'")).scalar_one()
    retry(store, dead)
    assert ok(client.get("/api/v1/channels"))["items"][0]["queued"] == 3


def test_acknowledged_alerts_move_state_in_metrics(sent: Sent) -> None:
    client = api(sent)
    alert = ok(client.get(f"/api/v1/messages/{sent.id('p1')}"))["alerts"][0]
    assert client.post(f"/api/v1/alerts/{alert['id']}/acknowledge", json={"by": "nurse"}).status_code == 200
    found = samples(client.get("/metrics").text)
    assert found[("vitalsstream_alerts_unresolved", (("severity", "critical"), ("state", "acknowledged")))] == 1


def test_a_database_failure_is_503_never_500(sent: Sent, tmp_path: Any) -> None:
    gone = SqlStore.from_url(f"sqlite:///{tmp_path / 'missing' / 'nowhere.db'}")
    client = AppClient(create_app(lambda: {"status": "ok"}, store=gone))
    for url in ("/api/v1/channels", "/api/v1/messages", "/api/v1/messages/1", "/metrics"):
        response = client.get(url)
        assert response.status_code == 503 and "Traceback" not in response.text, url
    gone.close()
