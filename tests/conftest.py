from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from adapters.sql_store import SqlStore
from engine.migrations import upgrade
from tests.servers import private_postgres, unavailable

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """URL of a PostgreSQL server: VITALS_TEST_POSTGRES_URL, else a private one started for the session."""
    url = os.environ.get("VITALS_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    with private_postgres() as started:
        yield started


def _admin(url: str) -> psycopg.Connection:
    parsed = make_url(url)
    return psycopg.connect(host=parsed.host, port=parsed.port or 5432, user=parsed.username,
                           password=parsed.password, dbname=parsed.database or "postgres", autocommit=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the PostgreSQL server, dropped after the test."""
    name = f"vitals_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = _admin(postgres_server)
    except psycopg.OperationalError as error:
        unavailable(f"PostgreSQL at {make_url(postgres_server).host} is not reachable: {error}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'vitals.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once on SQLite and once on a real PostgreSQL."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    created = SqlStore.from_url(store_url)
    upgrade(created.engine)
    yield created
    created.close()
