"""POST /api/v1/messages/{id}/reprocess: a refused message through its route again, linked to the first."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from adapters.http_api import create_app
from adapters.sql_store import SqlStore
from adapters.sql_tables import messages
from engine.channel import Channel, Route
from tests.http_client import AppClient
from tests.messages import fixture
from transforms.codes import DEFAULT_CODES
from transforms.oru import OruMapping

LEARNED = Route(oru=OruMapping(codes=DEFAULT_CODES.extended(units=[("furlongs", "Cel")])))


def app(store: SqlStore, route: Route = LEARNED) -> AppClient:
    return AppClient(create_app(lambda: {"status": "ok"}, store=store, routes={"default": route}))


def test_a_refused_message_is_stored_once_its_route_knows_the_unit(store: SqlStore) -> None:
    refused = Channel(store).dispatch(fixture("bad/unknown_unit.hl7"), Route())
    response = app(store).post(f"/api/v1/messages/{refused.message_id}/reprocess")
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["status"], body["ack_codes"], body["readings"]) == ("STORED", ["AA"], 1)
    with store.engine.connect() as conn:
        assert conn.execute(select(messages.c.reprocess_of).where(messages.c.id == body["message_id"])
                            ).scalar_one() == refused.message_id


def test_still_unmappable_it_is_refused_again_and_kept(store: SqlStore) -> None:
    refused = Channel(store).dispatch(fixture("bad/unknown_unit.hl7"), Route())
    body = app(store, Route()).post(f"/api/v1/messages/{refused.message_id}/reprocess").json()
    assert body["status"] == "ERROR" and body["ack_codes"] == ["AE"] and body["message_id"] != refused.message_id


@pytest.mark.parametrize("case, status, words", [
    ("stored", 409, "stored already"), ("unknown", 404, "does not exist"), ("no route", 409, "does not run"),
])
def test_what_cannot_be_reprocessed_is_refused_in_words(store: SqlStore, case: str, status: int, words: str) -> None:
    stored = Channel(store).dispatch(fixture("pcd01_nibp.hl7"), Route())
    refused = Channel(store).dispatch(fixture("bad/unknown_unit.hl7"), Route(name="retired"))
    target = {"stored": stored.message_id, "unknown": 999999, "no route": refused.message_id}[case]
    response = app(store).post(f"/api/v1/messages/{target}/reprocess")
    assert response.status_code == status and words in response.json()["detail"]
