"""The outbox over REST: rows (list without payload, one with payload and attempts), destinations with their
counts, and the operators' actions (retry one dead letter, pause, resume, retry a destination's dead letters).

Rows are queued by the channel (a route with outbox targets) and moved by the real outbox worker, driven one
step at a time (claim, deliver) with a scripted sender, so every state is one the engine really writes.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from adapters.delivery import DeliveryFailed
from adapters.http_api import create_app
from adapters.rest.outbox import router
from adapters.rest.settings import ApiSettings
from adapters.sql_store import SqlStore
from adapters.sql_tables import outbox
from engine.channel import Channel, Route
from engine.jobs.retention import prune_content
from engine.migrations import upgrade
from engine.outbox import Backoff, Lane, OutboxWorker
from engine.outbox_actions import pause
from engine.outbox_rows import OutboxTarget
from tests.http_client import AppClient
from tests.messages import oru

EHR = OutboxTarget("ehr", readings=True, alerts=True)
PAGER = OutboxTarget("pager", readings=False, alerts=True, severities=frozenset({"critical"}))
ICU = Route(name="icu", outbox=(EHR, PAGER))
RETIRED = Route(name="ward", outbox=(OutboxTarget("legacy", readings=True, alerts=False),))  # no longer configured
CONFIGURED = [{"name": "ehr", "kind": "ehr_soap", "route": "icu"}, {"name": "pager", "kind": "notify", "route": "icu"},
              {"name": "fax", "kind": "notify", "route": "ward"}]
KEYS = ApiSettings(api_keys=("k-one",))
SUMMARY_FIELDS = {"id", "destination", "route", "kind", "idempotency_key", "message_id", "alert_id", "patient_id",
                  "state", "attempts", "next_attempt_at", "claimed_by", "claimed_until", "remote_id", "last_error",
                  "created_at", "sent_at", "payload_pruned_at"}
AN_HOUR = 3600.0


class Ticking:
    """A clock that starts an hour ago and moves 10 ms each time it is read: every row gets its own time."""

    def __init__(self) -> None:
        self.moment = datetime.now(UTC) - timedelta(hours=1)

    def __call__(self) -> datetime:
        self.moment += timedelta(milliseconds=10)
        return self.moment


class ScriptedSender:
    """Accepts the records of ``accepted`` patients, refuses those of ``refused`` for good (dead letters) and
    fails the rest for now (retried after the backoff)."""

    def __init__(self, accepted: frozenset[str] = frozenset({"P1"}), refused: frozenset[str] = frozenset({"P2"})):
        self.accepted = accepted
        self.refused = refused

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
    ids: dict[tuple[str, str, str], int]  # (destination, kind, patient) -> outbox id
    message_ids: dict[str, int]  # patient -> message id

    def id(self, destination: str, kind: str, patient: str) -> int:
        return self.ids[(destination, kind, patient)]


def deliver_all(store: SqlStore, sender: ScriptedSender, destination: str = "ehr") -> None:
    """Claim and deliver the destination's due rows until none is due (the worker's steps, no threads)."""
    lane = Lane(destination, sender, backoff=Backoff(first_seconds=AN_HOUR, max_seconds=AN_HOUR))
    worker = OutboxWorker(store, [lane], node="node-a")
    while rows := worker.claim(lane, 10):
        for row in rows:
            worker.deliver(lane, row)


def seed(store: SqlStore) -> Seeded:
    """ehr: P1 observations SENT, P2 observations and alert DEAD, P3 observations PENDING after one failure;
    pager: the P2 alert claimed (SENDING) by node-b; legacy (only in the outbox): P4 PENDING;
    archive (only in destinations): paused by ops.lee. fax is configured and has nothing."""
    channel = Channel(store, clock=Ticking())
    messages = {}
    for number, (patient, route, heart_rate) in enumerate((("P1", ICU, 72), ("P2", ICU, 150), ("P3", ICU, 80),
                                                            ("P4", RETIRED, 75)), 1):
        receipt = channel.dispatch(oru(f"O-{number}", patient, "20261121100000", [("heart_rate", heart_rate)]), route)
        assert receipt.status == "STORED" and receipt.message_id is not None
        messages[patient] = receipt.message_id
    deliver_all(store, ScriptedSender())
    pager = Lane("pager", ScriptedSender())
    assert len(OutboxWorker(store, [pager], node="node-b").claim(pager, 10)) == 1
    pause(store, "archive", "ops.lee")
    with store.engine.connect() as conn:
        ids = {(r.destination, r.kind, r.patient_id): r.id for r in conn.execute(outbox.select())}
    return Seeded(store, ids, messages)


@pytest.fixture
def seeded(store: SqlStore) -> Seeded:
    """On SQLite and PostgreSQL: for what the database answers."""
    return seed(store)


@contextmanager
def sqlite_seeded(path: Path) -> Iterator[Seeded]:
    store = SqlStore.from_url(f"sqlite:///{path}")
    upgrade(store.engine)
    try:
        yield seed(store)
    finally:
        store.close()


@pytest.fixture
def on_sqlite(tmp_path: Path) -> Iterator[Seeded]:
    """SQLite only: for keys, which no database decides."""
    with sqlite_seeded(tmp_path / "vitals.db") as seeded:
        yield seeded


@pytest.fixture(scope="module")
def unchanged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppClient]:
    """One seeded SQLite database for the module's requests that are refused before anything is written."""
    with sqlite_seeded(tmp_path_factory.mktemp("outbox") / "vitals.db") as seeded:
        yield api(seeded)


def app_for(store: SqlStore, settings: ApiSettings | None = None,
            destinations: list[dict[str, str]] | None = CONFIGURED) -> FastAPI:
    """The app as the engine will build it once create_app mounts this router and sets the destinations."""
    app = create_app(lambda: {"status": "ok"}, store=store, api=settings)
    if not any(getattr(route, "path", None) == "/api/v1/outbox" for route in app.routes):
        app.include_router(router)
    if destinations is not None:
        app.state.destinations = destinations
    return app


def api(seeded: Seeded, settings: ApiSettings | None = None) -> AppClient:
    return AppClient(app_for(seeded.store, settings))


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def rows(client: AppClient, **params: Any) -> list[dict[str, Any]]:
    return ok(client.get("/api/v1/outbox", params=params))["items"]


def destinations(client: AppClient) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in ok(client.get("/api/v1/destinations"))["items"]}


# --- the rows (SQLite and PostgreSQL) ----------------------------------------------------------------------

def test_rows_come_newest_first_without_their_payload(seeded: Seeded) -> None:
    items = rows(api(seeded))
    assert [(i["destination"], i["kind"], i["patient_id"]) for i in items] == [
        ("legacy", "observations", "P4"), ("ehr", "observations", "P3"), ("pager", "alert", "P2"),
        ("ehr", "alert", "P2"), ("ehr", "observations", "P2"), ("ehr", "observations", "P1")]
    assert all(set(item) == SUMMARY_FIELDS for item in items)  # never the payload
    sent, claimed, dead = items[-1], items[2], items[3]
    assert (sent["state"], sent["attempts"], sent["remote_id"], sent["last_error"], sent["route"]) == (
        "SENT", 1, f"EHR-{sent['idempotency_key']}", None, "icu")
    assert sent["sent_at"].endswith("Z") and sent["created_at"].endswith("Z")
    assert (claimed["state"], claimed["claimed_by"], claimed["attempts"]) == ("SENDING", "node-b", 0)
    assert claimed["claimed_until"].endswith("Z") and claimed["alert_id"] is not None
    assert (dead["state"], dead["last_error"], dead["sent_at"], dead["claimed_by"]) == (
        "DEAD", "EHR refused the record: unknown patient", None, None)


def test_filters_combine_and_paging_walks_every_row_once(seeded: Seeded) -> None:
    client = api(seeded)
    ids = lambda **params: [i["id"] for i in rows(client, **params)]  # noqa: E731
    assert ids(state="DEAD") == [seeded.id("ehr", "alert", "P2"), seeded.id("ehr", "observations", "P2")]
    assert ids(state="PENDING") == [seeded.id("legacy", "observations", "P4"), seeded.id("ehr", "observations", "P3")]
    assert ids(destination="pager") == [seeded.id("pager", "alert", "P2")]
    assert ids(kind="alert", destination="ehr") == [seeded.id("ehr", "alert", "P2")]
    assert ids(patient_id="P2", state="SENDING") == [seeded.id("pager", "alert", "P2")]
    assert ids(message_id=seeded.message_ids["P2"]) == [seeded.id("pager", "alert", "P2"),
                                                         seeded.id("ehr", "alert", "P2"),
                                                         seeded.id("ehr", "observations", "P2")]
    assert ids(state="SUPPRESSED") == ids(destination="nowhere") == ids(kind="alert_resolved") == []
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = ok(client.get("/api/v1/outbox", params=params))
        seen += [i["id"] for i in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == ids()
    first = ok(client.get("/api/v1/outbox", params={"destination": "ehr", "limit": 3}))
    rest = ids(destination="ehr", cursor=first["next_cursor"])
    assert [i["id"] for i in first["items"]] + rest == ids(destination="ehr")


def test_one_row_has_its_payload_and_attempts(seeded: Seeded) -> None:
    client = api(seeded)
    alert_id = seeded.id("ehr", "alert", "P2")
    one = ok(client.get(f"/api/v1/outbox/{alert_id}"))
    assert set(one) == {"row", "payload", "attempts"}
    assert one["row"] == next(i for i in rows(client) if i["id"] == alert_id)
    payload = one["payload"]
    assert (payload["patient_id"], payload["vital"], payload["severity"], payload["alert_id"]) == (
        "P2", "heart_rate", "critical", one["row"]["alert_id"])
    [attempt] = one["attempts"]
    assert (attempt["attempt"], attempt["node"], attempt["outcome"], attempt["error"], attempt["remote_id"]) == (
        1, "node-a", "dead", "EHR refused the record: unknown patient", None)
    assert attempt["started_at"].endswith("Z") and attempt["duration_ms"] >= 0
    observations = ok(client.get(f"/api/v1/outbox/{seeded.id('ehr', 'observations', 'P3')}"))
    assert [r["value"] for r in observations["payload"]["readings"]] == [80.0]
    assert [(a["outcome"], a["error"]) for a in observations["attempts"]] == [("retry", "EHR timed out")]
    assert ok(client.get(f"/api/v1/outbox/{seeded.id('pager', 'alert', 'P2')}"))["attempts"] == []


def test_a_row_whose_payload_retention_emptied_says_so(seeded: Seeded) -> None:
    client = api(seeded)
    sent, dead = seeded.id("ehr", "observations", "P1"), seeded.id("ehr", "observations", "P2")
    result = prune_content(seeded.store, {}, datetime.now(UTC) + timedelta(days=31), pause_seconds=0)
    assert result.payloads == {"icu": 1}  # the SENT row; the dead letter keeps its payload to be sent again
    one = ok(client.get(f"/api/v1/outbox/{sent}"))
    assert one["payload"] is None and one["row"]["state"] == "SENT" and one["row"]["payload_pruned_at"]
    assert [a["outcome"] for a in one["attempts"]] == ["sent"]  # the audit trail stays
    assert ok(client.get(f"/api/v1/outbox/{dead}"))["payload"]["patient_id"] == "P2"


def test_a_dead_letter_is_sent_again_with_its_history_and_nothing_else_is(seeded: Seeded) -> None:
    client = api(seeded)
    dead = seeded.id("ehr", "observations", "P2")
    retried = ok(client.post(f"/api/v1/outbox/{dead}/retry"))
    assert set(retried) == SUMMARY_FIELDS and (retried["id"], retried["state"], retried["attempts"]) == (
        dead, "PENDING", 1)
    again = client.post(f"/api/v1/outbox/{dead}/retry")  # a second operator, a moment later
    assert again.status_code == 409
    assert again.json() == {"detail": f"outbox row {dead} is PENDING: only dead letters (DEAD) are sent again"}
    assert [i["id"] for i in rows(client, state="DEAD")] == [seeded.id("ehr", "alert", "P2")]
    deliver_all(seeded.store, ScriptedSender(accepted=frozenset({"P1", "P2"})))  # P3 still waits for its backoff
    one = ok(client.get(f"/api/v1/outbox/{dead}"))
    assert (one["row"]["state"], one["row"]["attempts"], one["row"]["idempotency_key"]) == (
        "SENT", 2, retried["idempotency_key"])
    assert [(a["attempt"], a["outcome"]) for a in one["attempts"]] == [(1, "dead"), (2, "sent")]  # oldest first
    for row_id, state in ((dead, "SENT"), (seeded.id("pager", "alert", "P2"), "SENDING"),
                          (seeded.id("ehr", "observations", "P3"), "PENDING")):
        refused = client.post(f"/api/v1/outbox/{row_id}/retry")
        assert refused.status_code == 409 and refused.json()["detail"].startswith(f"outbox row {row_id} is {state}:")
        assert ok(client.get(f"/api/v1/outbox/{row_id}"))["row"]["state"] == state
    missing = client.post("/api/v1/outbox/999999/retry")
    assert missing.status_code == 404 and missing.json() == {"detail": "there is no outbox row 999999"}


# --- destinations (SQLite and PostgreSQL) -------------------------------------------------------------------

def test_destinations_from_configuration_and_tables(seeded: Seeded) -> None:
    found = destinations(api(seeded))
    assert list(found) == ["archive", "ehr", "fax", "legacy", "pager"]
    ehr = found["ehr"]
    assert (ehr["kind"], ehr["route"], ehr["configured"], ehr["paused"], ehr["changed_by"], ehr["changed_at"]) == (
        "ehr_soap", "icu", True, False, None, None)
    assert ehr["counts"] == {"PENDING": 1, "SENDING": 0, "SENT": 1, "DEAD": 2, "SUPPRESSED": 0}
    assert ehr["oldest_pending_age_seconds"] > AN_HOUR - 60  # P3's row was queued by a clock an hour behind
    assert ehr["last_sent_at"] == rows(api(seeded), state="SENT")[0]["sent_at"]
    pager = found["pager"]
    assert pager["counts"]["SENDING"] == 1 and pager["oldest_pending_age_seconds"] is pager["last_sent_at"] is None
    fax = found["fax"]
    assert (fax["kind"], fax["route"], fax["configured"], fax["paused"]) == ("notify", "ward", True, False)
    assert set(fax["counts"].values()) == {0} and fax["oldest_pending_age_seconds"] is None
    legacy = found["legacy"]
    assert (legacy["kind"], legacy["route"], legacy["configured"], legacy["counts"]["PENDING"]) == (
        None, "ward", False, 1)
    archive = found["archive"]
    assert (archive["configured"], archive["paused"], archive["changed_by"], archive["route"]) == (
        False, True, "ops.lee", None)
    assert archive["changed_at"].endswith("Z") and set(archive["counts"].values()) == {0}
    unconfigured = destinations(AppClient(app_for(seeded.store, destinations=None)))
    assert list(unconfigured) == ["archive", "ehr", "legacy", "pager"]
    assert {item["configured"] for item in unconfigured.values()} == {False}
    assert (unconfigured["ehr"]["route"], unconfigured["ehr"]["kind"]) == ("icu", None)


def test_pause_and_resume_record_who_and_the_worker_sees_it(seeded: Seeded) -> None:
    client = api(seeded)
    worker = OutboxWorker(seeded.store, [], node="node-a")
    paused = ok(client.post("/api/v1/destinations/ehr/pause", json={"by": " ops.kim "}))
    assert (paused["name"], paused["paused"], paused["changed_by"]) == ("ehr", True, "ops.kim")
    assert paused["changed_at"].endswith("Z") and paused["counts"]["DEAD"] == 2 and worker.paused("ehr")
    again = ok(client.post("/api/v1/destinations/ehr/pause", json={"by": "ops.ann"}))  # pausing twice is no error
    assert (again["paused"], again["changed_by"]) == (True, "ops.ann")
    resumed = ok(client.post("/api/v1/destinations/ehr/resume", json={"by": "ops.lee"}))
    assert (resumed["paused"], resumed["changed_by"]) == (False, "ops.lee") and not worker.paused("ehr")
    listed = destinations(client)["ehr"]
    assert {k: v for k, v in listed.items() if k != "oldest_pending_age_seconds"} == {
        k: v for k, v in resumed.items() if k != "oldest_pending_age_seconds"}
    fax = ok(client.post("/api/v1/destinations/fax/pause", json={"by": "ops.kim"}))  # configured, never used
    assert (fax["paused"], fax["configured"], fax["kind"]) == (True, True, "notify")
    legacy = ok(client.post("/api/v1/destinations/legacy/pause", json={"by": "ops.kim"}))  # known from its rows
    assert (legacy["paused"], legacy["configured"], legacy["route"]) == (True, False, "ward")
    assert [name for name, item in destinations(client).items() if item["paused"]] == ["archive", "fax", "legacy"]


def test_retry_dead_sends_every_dead_letter_of_one_destination(seeded: Seeded) -> None:
    client = api(seeded)
    assert ok(client.post("/api/v1/destinations/pager/retry-dead")) == {"retried": 0}
    assert ok(client.post("/api/v1/destinations/ehr/retry-dead")) == {"retried": 2}
    assert destinations(client)["ehr"]["counts"] == {"PENDING": 3, "SENDING": 0, "SENT": 1, "DEAD": 0,
                                                     "SUPPRESSED": 0}
    assert ok(client.post("/api/v1/destinations/ehr/retry-dead")) == {"retried": 0}
    assert ok(client.post("/api/v1/destinations/archive/retry-dead")) == {"retried": 0}  # known from its switch
    for action in ("pause", "resume", "retry-dead"):
        unknown = client.post(f"/api/v1/destinations/nowhere/{action}", json={"by": "ops.kim"})
        assert unknown.status_code == 404
        assert unknown.json() == {"detail": "there is no destination nowhere: it is neither configured nor in the "
                                            "outbox"}
    assert "nowhere" not in destinations(client)  # a typo leaves no row behind


def test_an_empty_database(store: SqlStore) -> None:
    client = AppClient(app_for(store))
    assert [(i["name"], i["configured"], i["paused"]) for i in ok(client.get("/api/v1/destinations"))["items"]] == [
        ("ehr", True, False), ("fax", True, False), ("pager", True, False)]
    assert rows(client) == []
    assert ok(client.post("/api/v1/destinations/fax/retry-dead")) == {"retried": 0}


# --- refused before anything is written (one SQLite database) -----------------------------------------------

@pytest.mark.parametrize(("params", "field"), [
    ({"state": "FAILED"}, "state"), ({"kind": "sms"}, "kind"), ({"destination": ""}, "destination"),
    ({"destination": "x" * 101}, "destination"), ({"message_id": 0}, "message_id"), ({"patient_id": ""}, "patient_id"),
    ({"limit": 1001}, "limit"), ({"cursor": "nope"}, "cursor"),
])
def test_bad_row_parameters_are_422_naming_the_field(unchanged: AppClient, params: dict, field: str) -> None:
    response = unchanged.get("/api/v1/outbox", params=params)
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["query", field]]


@pytest.mark.parametrize(("path", "status"), [("999999", 404), ("0", 422), ("abc", 422), (str(2**63), 422)])
def test_an_unknown_or_bad_row_id(unchanged: AppClient, path: str, status: int) -> None:
    for response in (unchanged.get(f"/api/v1/outbox/{path}"), unchanged.post(f"/api/v1/outbox/{path}/retry")):
        assert response.status_code == status
        if status == 404:
            assert response.json() == {"detail": "there is no outbox row 999999"}


@pytest.mark.parametrize("action", ["pause", "resume", "retry-dead"])
def test_a_destination_name_longer_than_its_column_is_422(unchanged: AppClient, action: str) -> None:
    response = unchanged.post(f"/api/v1/destinations/{'x' * 101}/{action}", json={"by": "ops.kim"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["path", "name"]


@pytest.mark.parametrize("body", [{}, {"by": ""}, {"by": "   "}, {"by": "x" * 101}, {"by": "a", "why": "b"}, None])
@pytest.mark.parametrize("action", ["pause", "resume"])
def test_who_pauses_or_resumes_is_required(unchanged: AppClient, action: str, body: object) -> None:
    response = unchanged.post(f"/api/v1/destinations/archive/{action}", json=body)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"][0] == "body"
    archive = destinations(unchanged)["archive"]
    assert (archive["paused"], archive["changed_by"]) == (True, "ops.lee")


# --- keys (SQLite: no database decides them) ----------------------------------------------------------------

WRITES = [("/api/v1/outbox/{dead}/retry", None), ("/api/v1/destinations/ehr/pause", {"by": "ops.kim"}),
          ("/api/v1/destinations/ehr/resume", {"by": "ops.kim"}), ("/api/v1/destinations/ehr/retry-dead", None)]
READS = ["/api/v1/outbox", "/api/v1/outbox/{dead}", "/api/v1/destinations"]


def test_writes_need_a_key_when_keys_are_set_and_a_refused_one_changes_nothing(on_sqlite: Seeded) -> None:
    dead = on_sqlite.id("ehr", "observations", "P2")
    client = api(on_sqlite, KEYS)
    for url, body in WRITES:
        for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Basic k-one"}, {"X-API-Key": "k-one "}):
            refused = client.post(url.format(dead=dead), json=body, headers=headers)
            assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer"), url
    ehr = destinations(client)["ehr"]  # reads stay open
    assert (ehr["paused"], ehr["changed_by"], ehr["counts"]["DEAD"]) == (False, None, 2)
    for url, body in WRITES:
        for headers in ({"X-API-Key": "k-one"}, {"Authorization": "Bearer k-one"}):
            assert client.post(url.format(dead=dead), json=body, headers=headers).status_code in (200, 409), url
    assert destinations(client)["ehr"]["changed_by"] == "ops.kim"


def test_without_keys_writes_are_open(on_sqlite: Seeded) -> None:
    dead = on_sqlite.id("ehr", "observations", "P2")
    client = api(on_sqlite)
    assert [client.post(url.format(dead=dead), json=body).status_code for url, body in WRITES] == [200] * 4


def test_reads_closed_by_settings_need_a_key(on_sqlite: Seeded) -> None:
    client = api(on_sqlite, ApiSettings(api_keys=("k-one",), auth_reads=True))
    urls = [url.format(dead=on_sqlite.id("ehr", "observations", "P2")) for url in READS]
    assert {client.get(url).status_code for url in urls} == {401}
    assert {client.get(url, headers={"X-API-Key": "k-one"}).status_code for url in urls} == {200}
    paused = client.post("/api/v1/destinations/ehr/pause", json={"by": "ops.kim"}, headers={"X-API-Key": "k-one"})
    assert paused.status_code == 200


def test_a_database_failure_is_503_never_500(tmp_path: Path) -> None:
    gone = SqlStore.from_url(f"sqlite:///{tmp_path / 'missing' / 'nowhere.db'}")
    client = AppClient(app_for(gone))
    for method, url in (("GET", "/api/v1/outbox"), ("GET", "/api/v1/outbox/1"), ("GET", "/api/v1/destinations"),
                        ("POST", "/api/v1/outbox/1/retry"), ("POST", "/api/v1/destinations/ehr/pause"),
                        ("POST", "/api/v1/destinations/legacy/retry-dead")):
        response = client.request(method, url, json={"by": "ops.kim"})
        assert response.status_code == 503 and "Traceback" not in response.text, url
    gone.close()
