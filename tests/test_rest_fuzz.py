"""Property-based fuzzing of the whole REST API from its own OpenAPI schema (schemathesis, in-process ASGI).

Every operation, writes included (API keys off), gets a bounded number of generated requests against a
SQLite database holding some messages, readings and alerts; no answer may be a 5xx.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import BaseSchema

from adapters.http_api import create_app
from adapters.sql_store import SqlStore
from engine.channel import Channel, Route
from engine.migrations import upgrade
from tests.http_client import AppClient
from tests.messages import fixture, oru

EXAMPLES_PER_OPERATION = 50

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaseSchema]:
    store = SqlStore.from_url(f"sqlite:///{Path(tmp_path_factory.mktemp('fuzz')) / 'vitals.db'}")
    upgrade(store.engine)
    channel = Channel(store)
    routes = {name: Route(name=name) for name in ("ward", "icu")}
    for n, raw in enumerate([oru("F-1", "P1", "20240101100000", [("heart_rate", 150), ("spo2", 85)], device="M1"),
                             oru("F-2", "P2", "20240101100100", [("temperature", 39.8)], device="M2"),
                             oru("F-1", "P1", "20240101100200", [("heart_rate", 60)], device="M1"),
                             fixture("pcd01_nibp.hl7"), fixture("bad/nonnumeric_value.hl7"),
                             fixture("bad/ack_message.hl7")]):
        channel.dispatch(raw, routes["ward" if n % 2 else "icu"])
    app = create_app(lambda: {"status": "ok"}, store=store, routes=routes)
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    store.close()


# schemathesis' own pytest parametrisation (schema.parametrize / from_fixture) needs a private attribute
# pytest 9 no longer has, so each operation's strategy is driven by Hypothesis here.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_no_operation_answers_a_server_error(api_schema: BaseSchema, mode: GenerationMode) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15
    failures = []
    for operation in operations:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck), phases=[Phase.generate])
        def fuzz(case: Case) -> None:
            case.call_and_validate(checks=[not_a_server_error])

        try:
            fuzz()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # an operation without parameters has no invalid request
        except Exception as error:  # collected, so every operation is tried
            failures.append(f"{operation.method.upper()} {operation.path}: {error}")
    assert not failures, "\n\n".join(failures)


def test_a_reading_from_before_the_year_1000_does_not_break_reads(sqlite_url: str) -> None:
    store = SqlStore.from_url(sqlite_url)
    upgrade(store.engine)
    try:
        assert Channel(store).dispatch(oru("Y-1", "P9", "08491029132447", [("heart_rate", 150)]),
                                       Route()).status == "STORED"
        client = AppClient(create_app(lambda: {"status": "ok"}, store=store))
        assert client.get("/api/v1/readings").status_code == 200
        assert client.get("/api/v1/alerts").status_code == 200
    finally:
        store.close()
