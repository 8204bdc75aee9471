"""GET /api/v1/readings: filters, newest first, keyset paging, ISO times with Z, 422 for bad parameters."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.http_api import create_app
from adapters.sql_store import SqlStore
from engine.channel import Channel, Route
from tests.http_client import AppClient
from tests.messages import fixture, oru


def send(store: SqlStore, *raw: bytes) -> None:
    channel = Channel(store)
    for message in raw:
        assert channel.dispatch(message, Route()).status == "STORED"


@pytest.fixture
def client(store: SqlStore) -> Iterator[AppClient]:
    send(store, *(oru(f"R-{n}", "P1", f"2024010110{n:02d}00", [("heart_rate", 70 + n), ("spo2", 97)],
                      device="MON-A") for n in range(5)),
         oru("R-9", "P2", "20240101103000+0100", [("heart_rate", 80)], device="MON-B"),
         fixture("pcd01_nibp.hl7"))
    yield AppClient(create_app(lambda: {"status": "ok"}, store=store))


def items(client: AppClient, **params: object) -> list[dict]:
    response = client.get("/api/v1/readings", params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_readings_come_newest_first_with_utc_times(client: AppClient) -> None:
    body = client.get("/api/v1/readings", params={"patient_id": "P1"}).json()
    times = [item["observed_at"] for item in body["items"]]
    assert len(times) == 10 and body["next_cursor"] is None
    assert times == sorted(times, reverse=True) and times[0] == "2024-01-01T10:04:00Z"
    first = body["items"][0]
    assert {first["vital"], first["unit"], first["device_id"]} <= {"heart_rate", "spo2", "/min", "%", "MON-A"}
    assert first["created_at"].endswith("Z") and isinstance(first["message_id"], int)


def test_filters_combine(client: AppClient) -> None:
    assert [i["value"] for i in items(client, patient_id="P1", vital="heart_rate")] == [74, 73, 72, 71, 70]
    assert {i["patient_id"] for i in items(client, device_id="MON-B")} == {"P2"}
    assert items(client, patient_id="nobody") == []
    assert {i["vital"] for i in items(client, vital="spo2")} == {"spo2"}


def test_from_is_inclusive_to_exclusive_and_naive_times_are_utc(client: AppClient) -> None:
    window = items(client, patient_id="P1", vital="heart_rate", **{"from": "2024-01-01T10:01:00",
                                                                   "to": "2024-01-01T10:03:00Z"})
    assert [i["observed_at"] for i in window] == ["2024-01-01T10:02:00Z", "2024-01-01T10:01:00Z"]
    # P2's reading was sent at 10:30+01:00, stored as 09:30 UTC
    assert [i["observed_at"] for i in items(client, patient_id="P2", **{"from": "2024-01-01T10:29:00+01:00"})] \
        == ["2024-01-01T09:30:00Z"]
    assert items(client, patient_id="P2", **{"from": "2024-01-01T09:31:00"}) == []


def test_paging_with_the_cursor_walks_every_reading_once(client: AppClient) -> None:
    everything = [i["id"] for i in items(client, limit=1000)]
    seen: list[int] = []
    params: dict[str, object] = {"limit": 3}
    while True:
        body = client.get("/api/v1/readings", params=params).json()
        seen += [i["id"] for i in body["items"]]
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert seen == everything and len(everything) == len(set(everything)) > 11


def test_the_cursor_keeps_the_filters_it_is_used_with(client: AppClient) -> None:
    body = client.get("/api/v1/readings", params={"patient_id": "P1", "vital": "spo2", "limit": 4}).json()
    rest = items(client, patient_id="P1", vital="spo2", limit=4, cursor=body["next_cursor"])
    assert [i["observed_at"][11:16] for i in body["items"] + rest] == ["10:04", "10:03", "10:02", "10:01", "10:00"]


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"limit": "ten"}, "limit"),
    ({"vital": "blood_type"}, "vital"), ({"from": "yesterday"}, "from"), ({"to": "2024-13-01"}, "to"),
    ({"cursor": "not-a-cursor"}, "cursor"), ({"cursor": "!!!"}, "cursor"), ({"patient_id": ""}, "patient_id"),
])
def test_bad_parameters_are_422_naming_the_field(client: AppClient, params: dict, field: str) -> None:
    response = client.get("/api/v1/readings", params=params)
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["query", field]]


def test_a_value_the_database_refuses_is_422_not_500(client: AppClient) -> None:
    response = client.get("/api/v1/readings", params={"patient_id": "P\x001"})
    assert response.status_code in (200, 422) and "Traceback" not in response.text
    if response.status_code == 200:  # SQLite compares the text; PostgreSQL refuses NUL in text
        assert response.json()["items"] == []
