"""SqlStore's kept writer connections (the store process's writers): reused while they work, given back to
the pool when a transaction fails, closed with the store; and driver_execute's error mapping."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from adapters.sql_store import SqlStore, driver_execute
from adapters.sql_tables import messages
from engine.migrations import upgrade


@pytest.fixture
def kept(store_url: str) -> Iterator[SqlStore]:
    created = SqlStore.from_url(store_url, keep_writer_connections=True)
    upgrade(created.engine)
    yield created
    created.close()


def _connection(store: SqlStore) -> Connection:
    with store.transaction() as tx:
        return tx.conn


def _message_count(store: SqlStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(messages)).scalar_one())


def _row(control_id: str) -> dict[str, object]:
    return {"route": "default", "control_id": control_id, "sending_application": "MON", "sending_facility": "ICU",
            "message_type": "ORU^R01", "version": "2.5", "content_hash": control_id, "raw": "MSH|^~\\&|MON",
            "peer": "", "status": "STORED", "received_at": datetime(2026, 11, 21, 12, 0)}


def _add_message(store: SqlStore, control_id: str) -> None:
    with store.transaction() as tx:
        tx.add_messages([_row(control_id)])


def test_a_thread_keeps_its_connection_from_one_transaction_to_the_next(kept: SqlStore) -> None:
    assert _connection(kept) is _connection(kept)


def test_a_failed_transaction_rolls_back_and_gives_its_connection_back(kept: SqlStore) -> None:
    _add_message(kept, "BEFORE")
    first = _connection(kept)
    with pytest.raises(RuntimeError), kept.transaction() as tx:
        tx.add_messages([_row("ROLLED-BACK")])
        raise RuntimeError("the batch failed after writing")
    assert first.closed  # back to the pool, which resets it (or drops it, if it was lost)
    assert _connection(kept) is not first
    _add_message(kept, "AFTER")
    assert _message_count(kept) == 2  # BEFORE and AFTER


@pytest.mark.postgres
def test_a_connection_the_server_ended_fails_one_transaction_then_a_new_one_is_used(postgres_url: str) -> None:
    store = SqlStore.from_url(postgres_url, keep_writer_connections=True)
    upgrade(store.engine)
    try:
        with store.transaction() as tx:
            backend = tx.conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        with store.engine.connect() as admin:
            admin.exec_driver_sql(f"SELECT pg_terminate_backend({int(backend)})")
            admin.commit()
        with pytest.raises(SQLAlchemyError):  # the channel answers this batch AR 207; its senders resend
            _add_message(store, "LOST")
        _add_message(store, "RECOVERED")
        assert _message_count(store) == 1
    finally:
        store.close()


def test_close_closes_the_kept_connections(kept: SqlStore) -> None:
    with kept.transaction() as tx:
        conn = tx.conn
    kept.close()
    assert conn.closed


@pytest.mark.postgres
def test_a_statement_on_a_closed_driver_connection_fails_as_sqlalchemy_does(postgres_url: str) -> None:
    """driver_execute skips SQLAlchemy's statement machinery, not its error mapping: the channel answers
    AR 207 for a SQLAlchemyError, and the pool must not hand out a connection that is gone."""
    store = SqlStore.from_url(postgres_url)
    try:
        with store.engine.connect() as conn:
            conn.connection.driver_connection.close()  # type: ignore[union-attr]
            with pytest.raises(DBAPIError) as raised:
                driver_execute(conn, "SELECT 1")
            assert raised.value.connection_invalidated
    finally:
        store.close()
