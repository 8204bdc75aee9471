"""The SQL store: messages, readings and alert evaluation, on SQLite, PostgreSQL or SQL Server.

The store runs statements; the channel owns the transaction (``with store.transaction() as tx``).
Alert evaluation runs inside the database in that same transaction: the PostgreSQL function
evaluate_alerts, the SQL Server procedure dbo.usp_evaluate_alerts, or on SQLite the same set-based SQL
from sql/sqlite/evaluate_alerts.sql.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, insert, select, text
from sqlalchemy.engine import Row, make_url

from adapters.sql_tables import device_readings, messages
from engine.migrations import SQL_DIR, statements
from transforms.vitals import VitalsReading

MessageKey = tuple[str, str, str]  # MSH-3, MSH-4, MSH-10 as stored: the duplicate key

# The time one statement may wait for a lock or a connection before the message is answered AR 207.
STATEMENT_TIMEOUT_SECONDS = 10


def utc_naive(moment: datetime) -> datetime:
    """Stored form of a time: UTC without zone (every dialect the same)."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def create_store_engine(url: str) -> Engine:
    """An Engine for ``url`` set up for durable writes (SQLite: WAL, synchronous=FULL, real BEGIN)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": STATEMENT_TIMEOUT_SECONDS})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True, pool_timeout=STATEMENT_TIMEOUT_SECONDS,
                             connect_args={"connect_timeout": 5,
                                           "options": f"-c lock_timeout={STATEMENT_TIMEOUT_SECONDS * 1000}"})
    return create_engine(url, pool_pre_ping=True, pool_timeout=STATEMENT_TIMEOUT_SECONDS)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # BEGIN is ours (see _sqlite_begin), so DDL is transactional too
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON",
                   f"busy_timeout={STATEMENT_TIMEOUT_SECONDS * 1000}"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # Writers take the write lock at BEGIN, so two writers queue instead of failing half-way.
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")


class SqlStore:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.dialect = engine.dialect.name
        self._sqlite_evaluation = (
            [text(s) for s in statements((SQL_DIR / "sqlite" / "evaluate_alerts.sql").read_text(), "sqlite")]
            if self.dialect == "sqlite" else []
        )

    @classmethod
    def from_url(cls, url: str) -> SqlStore:
        return cls(create_store_engine(url))

    @contextmanager
    def transaction(self) -> Iterator[StoreTransaction]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(write=True)
            with conn.begin():
                yield StoreTransaction(conn, self)

    def close(self) -> None:
        self.engine.dispose()


class StoreTransaction:
    def __init__(self, conn: Connection, store: SqlStore):
        self.conn = conn
        self._store = store

    def messages_with_keys(self, keys: Iterable[MessageKey]) -> dict[MessageKey, list[Row]]:
        """Earlier messages with these duplicate keys (sender, facility, MSH-10), oldest first, by key."""
        wanted = set(keys)
        if not wanted:
            return {}
        query = (select(messages.c.id, messages.c.sending_application, messages.c.sending_facility,
                        messages.c.control_id, messages.c.content_hash, messages.c.status, messages.c.ack,
                        messages.c.duplicate_of)
                 .where(messages.c.control_id.in_(sorted({key[2] for key in wanted})))
                 .order_by(messages.c.id))
        found: dict[MessageKey, list[Row]] = {}
        for row in self.conn.execute(query):
            key = (row.sending_application, row.sending_facility, row.control_id)
            if key in wanted:
                found.setdefault(key, []).append(row)
        return found

    def add_messages(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Insert message rows in one statement; their new ids, in the order of ``rows``."""
        if not rows:
            return []
        statement = insert(messages).returning(messages.c.id, sort_by_parameter_order=True)
        return [int(row.id) for row in self.conn.execute(statement, list(rows))]

    def add_readings(self, readings: Sequence[tuple[int, VitalsReading]], created_at: datetime) -> None:
        """Insert (message id, reading) pairs in one statement."""
        if not readings:
            return
        self.conn.execute(insert(device_readings), [
            {"message_id": message_id, "patient_id": r.patient_id, "device_id": r.device_id, "vital": r.vital,
             "value": r.value, "unit": r.unit, "observed_at": utc_naive(r.observed_at), "status": r.status,
             "source_system": r.source_system, "source_code": r.source_code, "source_value": r.source_value,
             "source_unit": r.source_unit, "created_at": created_at}
            for message_id, r in readings
        ])

    def evaluate_alerts(self, message_ids: Sequence[int]) -> int:
        """Raise or update alerts for these messages' readings, in the database; returns alerts touched.

        The same result as evaluating each message alone, in id order (see sql/postgresql/003_*.sql).
        """
        if not message_ids:
            return 0
        dialect = self._store.dialect
        ids = [int(i) for i in message_ids]
        if dialect == "postgresql":
            return int(self.conn.execute(text("SELECT evaluate_alerts(CAST(:ids AS BIGINT[]))"),
                                         {"ids": ids}).scalar_one())
        if dialect == "mssql":
            return int(self.conn.execute(text("EXEC dbo.usp_evaluate_alerts @message_ids = :ids"),
                                         {"ids": ",".join(map(str, ids))}).scalar_one())
        touched = 0
        for statement in self._store._sqlite_evaluation:
            self.conn.execute(statement, {"message_ids": json.dumps(ids)})
            touched += int(self.conn.exec_driver_sql("SELECT changes()").scalar_one())
        return touched
