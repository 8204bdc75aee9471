"""The SQL store: messages, readings and alert evaluation, on SQLite, PostgreSQL or SQL Server.

The store runs statements; the channel owns the transaction (``with store.transaction() as tx``).
Alert evaluation runs inside the database in that same transaction: the PostgreSQL function
evaluate_alerts, the SQL Server procedure dbo.usp_evaluate_alerts, or on SQLite the same set-based SQL
from sql/sqlite/evaluate_alerts.sql. On PostgreSQL a group commit's message rows, readings and evaluation
are one call of store_messages (sql/postgresql/014_*.sql).
"""
from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
from sqlalchemy import Connection, DateTime, Engine, Table, bindparam, create_engine, event, insert, select, text
from sqlalchemy.engine import Row, make_url
from sqlalchemy.exc import DBAPIError

from adapters.sql_tables import alerts, device_readings, messages, outbox
from engine.migrations import SQL_DIR, statements
from transforms.vitals import VitalsReading

MessageKey = tuple[str, str, str]  # MSH-3, MSH-4, MSH-10 as stored: the duplicate key

# The time one statement may wait for a lock or a connection before the message is answered AR 207.
STATEMENT_TIMEOUT_SECONDS = 10


def _same(value: Any) -> Any:
    return value


def utc_naive(moment: datetime) -> datetime:
    """Stored form of a time: UTC without zone (every dialect the same); a naive time is taken as UTC."""
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def driver_execute(conn: Connection, sql: str, parameters: Any = (), many: bool = False) -> Any:
    """Run ``sql`` on the driver's own cursor of ``conn`` and return that cursor.

    For the statements every batch runs: ``exec_driver_sql`` adds ~12 us of SQLAlchemy a statement (result
    objects, events), several times what the simplest of them costs the database. Failures still come out
    as ``exec_driver_sql``'s would: as SQLAlchemy's exception for the driver's (which the channel's fallback,
    AR 207, relies on), with a lost connection invalidated so the pool does not hand it out again.
    """
    cursor = None
    try:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        if many:
            cursor.executemany(sql, parameters)
        else:
            cursor.execute(sql, parameters)
    except conn.dialect.loaded_dbapi.Error as error:
        raise _driver_error(conn, sql, parameters, error, cursor) from error
    return cursor


def _driver_error(conn: Connection, sql: str, parameters: Any, error: Exception, cursor: Any | None) -> DBAPIError:
    """SQLAlchemy's exception for a driver error on ``conn``, invalidating the connection if it is lost."""
    dialect = conn.dialect
    lost = dialect.is_disconnect(error, conn.connection.driver_connection, cursor)
    if lost:
        conn.invalidate(error)
    return DBAPIError.instance(sql, parameters, error, dialect.loaded_dbapi.Error, connection_invalidated=lost,
                               dialect=dialect)


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
        # No pool_pre_ping: it costs a round trip per transaction; a connection the server dropped fails
        # its transaction (AR 207, the sender resends) and SQLAlchemy discards the whole stale pool.
        # prepare_threshold=None: psycopg would otherwise prepare a statement on the server after five runs,
        # and PostgreSQL may then keep a generic plan made while the tables were nearly empty (a fresh
        # install): measured, the duplicate lookup scanned all of messages, 0.4 -> 2.7 ms a batch within
        # 8,000 messages. Unprepared statements are planned for their values each time, which costs less.
        return create_engine(url, pool_timeout=STATEMENT_TIMEOUT_SECONDS,
                             connect_args={"connect_timeout": 5, "prepare_threshold": None,
                                           "options": f"-c lock_timeout={STATEMENT_TIMEOUT_SECONDS * 1000}"})
    engine = create_engine(url, pool_timeout=STATEMENT_TIMEOUT_SECONDS)
    if parsed.get_backend_name() == "mssql":
        event.listen(engine, "connect", _mssql_connect)
    return engine


def _mssql_connect(dbapi_connection: Any, _record: Any) -> None:
    # SQL Server waits for a lock forever by default; this bounds it like PostgreSQL's lock_timeout.
    cursor = dbapi_connection.cursor()
    cursor.execute(f"SET LOCK_TIMEOUT {STATEMENT_TIMEOUT_SECONDS * 1000}")
    cursor.close()


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # BEGIN is ours (see _sqlite_begin), so DDL is transactional too
    cursor = dbapi_connection.cursor()
    # temp_store=MEMORY: the alert evaluation's window functions sort and materialize into temporary
    # b-trees, which otherwise live in temporary files (measured: 991 -> 520 us a 16-message evaluation).
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "temp_store=MEMORY",
                   f"busy_timeout={STATEMENT_TIMEOUT_SECONDS * 1000}"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # Writers take the write lock at BEGIN, so two writers queue instead of failing half-way.
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")


class CoreInsert:
    """Rows (tuples in ``columns`` order) inserted through SQLAlchemy Core: one multi-row statement."""

    def __init__(self, table: Table, columns: Sequence[str]):
        self.statement = insert(table)
        self.columns = tuple(columns)

    def execute(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        conn.execute(self.statement, [dict(zip(self.columns, row, strict=True)) for row in rows])


class DriverInsert:
    """An INSERT compiled once for the engine's dialect and run with the driver's executemany.

    On SQLite, SQLAlchemy's per-row parameter processing costs more than the insert itself (measured: 9.5
    against 5 us a reading row). Rows are tuples in ``columns`` order with values the driver takes as is.
    """

    def __init__(self, engine: Engine, table: Table, columns: Sequence[str]):
        compiled = insert(table).compile(dialect=engine.dialect, column_keys=list(columns))
        self.sql = str(compiled)
        self.columns = tuple(columns)
        self.positions = [self.columns.index(name) for name in compiled.positiontup or ()]
        self.in_order = self.positions == list(range(len(self.columns)))

    def execute(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        if self.in_order:
            driver_execute(conn, self.sql, rows, many=True)
        elif self.positions:
            driver_execute(conn, self.sql, [tuple(row[i] for i in self.positions) for row in rows], many=True)
        else:
            driver_execute(conn, self.sql, [dict(zip(self.columns, row, strict=True)) for row in rows], many=True)


class CopyInsert:
    """Rows streamed with PostgreSQL's COPY: one round trip for a whole batch (psycopg sends per-row
    statements for an executemany; measured: 64,216 INSERTs for 8,027 messages)."""

    def __init__(self, table: Table, columns: Sequence[str]):
        self.sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"

    def execute(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        cursor = None
        try:
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            with cursor, cursor.copy(self.sql) as copy:
                for row in rows:
                    copy.write_row(row)
        except psycopg.Error as error:  # as SQLAlchemy's own statements fail: the channel answers AR 207
            raise _driver_error(conn, self.sql, None, error, cursor) from error


class EarlierMessage(NamedTuple):
    """A stored message whose duplicate key a new message shares: what decides a resend's answer."""

    id: int
    sending_application: str
    sending_facility: str
    control_id: str
    content_hash: str
    status: str
    ack: str | None
    duplicate_of: int | None


_EARLIER_COLUMNS = EarlierMessage._fields
# Built once: constructing a statement per batch costs more than running it (cache key generation).
_EARLIER_MESSAGES = (
    select(messages.c.id, messages.c.sending_application, messages.c.sending_facility, messages.c.control_id,
           messages.c.content_hash, messages.c.status, messages.c.ack, messages.c.duplicate_of)
    .where(messages.c.control_id.in_(bindparam("control_ids", expanding=True)))
    .order_by(messages.c.id))
_INSERT_MESSAGES = insert(messages).returning(messages.c.id, sort_by_parameter_order=True)

READING_COLUMNS = ("message_id", "patient_id", "device_id", "vital", "value", "unit", "observed_at", "status",
                   "source_system", "source_code", "source_value", "source_unit", "comparator", "created_at")


class DriverMessageStatements:
    """The duplicate lookup and the message insert as SQL text, run through ``driver_execute`` (SQLite and
    PostgreSQL; SQL Server keeps the Core statements).

    Through SQLAlchemy Core both cost far more Python than SQL: the lookup renders its expanding IN list and
    processes every row on each call; the insert, asked for ids in row order, runs one INSERT ... RETURNING
    per message on SQLite (no sentinel column SQLAlchemy trusts there) and builds a sentinel-sorted
    INSERT ... SELECT on PostgreSQL. Here the lookup is one statement with a placeholder per control id and
    the insert one multi-row INSERT ... VALUES ... RETURNING id per chunk of rows. Both databases draw the ids
    (AUTOINCREMENT, the identity sequence) row by row in VALUES order, so the ids sorted ascending are the
    rows' ids in order.
    """

    def __init__(self, placeholder: str, max_parameters: int, bind_time: Callable[[datetime], Any] | None):
        self._placeholder = placeholder
        self._max_parameters = max_parameters
        self._bind_time = bind_time  # a time as the dialect's SQLAlchemy type binds it; None: as it is
        self._lookups: dict[int, str] = {}
        self._inserts: dict[tuple[tuple[str, ...], int], str] = {}

    def earlier_messages(self, conn: Connection, control_ids: Sequence[str]) -> Iterable[tuple[Any, ...]]:
        sql = self._lookups.get(len(control_ids))
        if sql is None:
            marks = ", ".join([self._placeholder] * len(control_ids))
            sql = self._lookups[len(control_ids)] = (
                f"SELECT {', '.join(_EARLIER_COLUMNS)} FROM messages WHERE control_id IN ({marks}) ORDER BY id")
        return driver_execute(conn, sql, tuple(control_ids)).fetchall()

    def add_messages(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
        columns = tuple(rows[0])
        per_chunk = max(1, self._max_parameters // len(columns))
        bind = self._bind_time
        times = _MESSAGE_TIMES if bind is not None else frozenset()
        ids: list[int] = []
        for start in range(0, len(rows), per_chunk):
            chunk = rows[start:start + per_chunk]
            values = tuple([bind(row[column]) if column in times and row[column] is not None else row[column]
                            for row in chunk for column in columns])
            ids += sorted(int(row[0]) for row in driver_execute(conn, self._insert(columns, len(chunk)), values))
        return ids

    def _insert(self, columns: tuple[str, ...], count: int) -> str:
        sql = self._inserts.get((columns, count))
        if sql is None:
            row = f"({', '.join([self._placeholder] * len(columns))})"
            sql = self._inserts[(columns, count)] = (
                f"INSERT INTO messages ({', '.join(columns)}) VALUES {', '.join([row] * count)} RETURNING id")
        return sql


_MESSAGE_TIMES = frozenset(column.name for column in messages.columns if isinstance(column.type, DateTime))


def _driver_statements(dialect: str) -> DriverMessageStatements | None:
    if dialect == "sqlite":  # SQLite binds at most 999 parameters a statement in builds before 3.32
        return DriverMessageStatements("?", 999, _sqlite_timestamp)
    if dialect == "postgresql":
        return DriverMessageStatements("%s", 65535, None)
    return None


def _sqlite_timestamp(moment: datetime) -> str:
    """SQLAlchemy's SQLite DATETIME text, so stored times compare and sort as text in SQL: the year padded
    to four digits, always six decimals ('0999-01-02 03:04:05.000006'); a naive time as it is."""
    return moment.isoformat(" ", "microseconds")


OUTBOX_COLUMNS = ("destination", "route", "kind", "idempotency_key", "message_id", "alert_id", "patient_id",
                  "payload", "state", "attempts", "next_attempt_at", "created_at")
_OUTBOX_TIMES = (OUTBOX_COLUMNS.index("next_attempt_at"), OUTBOX_COLUMNS.index("created_at"))

# The alerts a batch raised: those whose raising reading belongs to one of its messages.
_RAISED_ALERTS = (
    select(alerts, device_readings.c.message_id)
    .join(device_readings, device_readings.c.id == alerts.c.reading_id)
    .where(device_readings.c.message_id.in_(bindparam("message_ids", expanding=True)))
    .order_by(alerts.c.id))
# Was an alert of this patient, vital and kind, as severe or more, notified to a destination since a time?
# (An escalation from warning to critical is always sent.)
_NOTIFIED_SINCE = (
    select(outbox.c.id).join(alerts, alerts.c.id == outbox.c.alert_id)
    .where(outbox.c.destination == bindparam("destination"), outbox.c.kind == "alert",
           outbox.c.state != "SUPPRESSED", outbox.c.created_at >= bindparam("since"),
           alerts.c.patient_id == bindparam("patient_id"), alerts.c.vital == bindparam("vital"),
           alerts.c.kind == bindparam("alert_kind"),
           alerts.c.severity.in_(bindparam("severities", expanding=True)))
    .limit(1))


def _fast_insert(engine: Engine, table: Table, columns: Sequence[str]) -> CopyInsert | DriverInsert | CoreInsert:
    """The fastest correct way to insert many rows on this dialect (readings: the hot path's biggest insert)."""
    if engine.dialect.name == "postgresql":
        return CopyInsert(table, columns)
    if engine.dialect.name == "sqlite":
        return DriverInsert(engine, table, columns)
    return CoreInsert(table, columns)


class SqlStore:
    def __init__(self, engine: Engine, keep_writer_connections: bool = False):
        """``keep_writer_connections``: each thread keeps the connection of its transactions from one to the
        next (the store process's writers: a pool checkout and return cost ~40 us a transaction)."""
        self.engine = engine
        self._kept: threading.local | None = threading.local() if keep_writer_connections else None
        self._kept_all: list[Connection] = []
        self._kept_lock = threading.Lock()
        self.dialect = engine.dialect.name
        self.readings_insert = _fast_insert(engine, device_readings, READING_COLUMNS)
        self.outbox_insert = _fast_insert(engine, outbox, OUTBOX_COLUMNS)
        self.timestamp: Callable[[datetime], Any] = _sqlite_timestamp if self.dialect == "sqlite" else _same
        self.message_statements = _driver_statements(self.dialect)
        self._sqlite_evaluation = (  # SQL text with :name parameters, which sqlite3 binds from a dict
            statements((SQL_DIR / "sqlite" / "evaluate_alerts.sql").read_text(), "sqlite")
            if self.dialect == "sqlite" else []
        )

    @classmethod
    def from_url(cls, url: str, keep_writer_connections: bool = False) -> SqlStore:
        return cls(create_store_engine(url), keep_writer_connections)

    @contextmanager
    def transaction(self) -> Iterator[StoreTransaction]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        if self._kept is None:
            with self.engine.connect() as conn:
                conn = conn.execution_options(write=True)
                with conn.begin():
                    yield StoreTransaction(conn, self)
            return
        conn = self._writer_connection(self._kept)
        try:
            with conn.begin():
                yield StoreTransaction(conn, self)
        except BaseException:
            self._kept.conn = None  # the next transaction starts on a fresh connection: this one may be broken
            self._forget(conn)
            raise

    def _writer_connection(self, kept: threading.local) -> Connection:
        conn: Connection | None = getattr(kept, "conn", None)
        if conn is None:
            conn = kept.conn = self.engine.connect().execution_options(write=True)
            with self._kept_lock:
                self._kept_all.append(conn)
        return conn

    def _forget(self, conn: Connection) -> None:
        with self._kept_lock:
            self._kept_all.remove(conn)
        conn.close()

    def close(self) -> None:
        with self._kept_lock:
            kept, self._kept_all = self._kept_all, []
        for conn in kept:
            conn.close()
        self.engine.dispose()


_STORE_MESSAGES = "SELECT message_ids, touched FROM store_messages(CAST(%s AS JSONB), CAST(%s AS JSONB))"


def _json_value(value: Any) -> Any:
    """A messages column's value as JSON carries it: times as ISO text (stored as UTC without zone)."""
    return utc_naive(value).isoformat() if isinstance(value, datetime) else value


# store_messages' reading records: "m", the position (from 1) of the reading's message, then the columns.
_JSON_READING_KEYS = ("m", *READING_COLUMNS[1:])


def _reading_values(r: VitalsReading, observed_at: Any, created_at: Any) -> tuple[Any, ...]:
    """A reading's device_readings columns after message_id, in READING_COLUMNS order, with its times as
    given (as the driver, or JSON, takes them)."""
    return (r.patient_id, r.device_id, r.vital, r.value, r.unit, observed_at, r.status, r.source_system,
            r.source_code, r.source_value, r.source_unit, r.comparator, created_at)


def _json_reading(position: int, r: VitalsReading, created_at: str) -> dict[str, Any]:
    """One of store_messages' reading records. A value that is not finite goes as text: JSON has no
    Infinity, and PostgreSQL's float input reads 'inf'."""
    record = dict(zip(_JSON_READING_KEYS, (position + 1, *_reading_values(
        r, utc_naive(r.observed_at).isoformat(), created_at)), strict=True))
    if not math.isfinite(r.value):
        record["value"] = repr(r.value)
    return record


class StoreTransaction:
    def __init__(self, conn: Connection, store: SqlStore):
        self.conn = conn
        self._store = store
        self.outbox_rows = 0  # written by this transaction: the outbox worker is woken after the commit

    def messages_with_keys(self, keys: Iterable[MessageKey]) -> dict[MessageKey, list[EarlierMessage]]:
        """Earlier messages with these duplicate keys (sender, facility, MSH-10), oldest first, by key."""
        wanted = set(keys)
        if not wanted:
            return {}
        found: dict[MessageKey, list[EarlierMessage]] = {}
        control_ids = sorted({key[2] for key in wanted})
        statements = self._store.message_statements
        rows = (statements.earlier_messages(self.conn, control_ids) if statements is not None
                else self.conn.execute(_EARLIER_MESSAGES, {"control_ids": control_ids}))
        for row in map(EarlierMessage._make, rows):
            key = (row.sending_application, row.sending_facility, row.control_id)
            if key in wanted:
                found.setdefault(key, []).append(row)
        return found

    def store_messages(self, rows: Sequence[dict[str, Any]], readings: Sequence[tuple[int, VitalsReading]],
                       created_at: datetime) -> tuple[list[int], int]:
        """Insert message rows and their readings, then evaluate alerts over the messages that have readings:
        the messages' new ids in the order of ``rows``, and the alerts touched. ``readings`` pairs a reading
        with the position of its message in ``rows``.

        PostgreSQL does it all in one call of store_messages (sql/postgresql/014_*.sql); the other databases
        run the statements one by one.
        """
        if not rows:
            return [], 0
        if self._store.dialect == "postgresql":
            return self._store_messages_in_one_call(rows, readings, created_at)
        ids = self.add_messages(rows)
        self.add_readings([(ids[position], reading) for position, reading in readings], created_at)
        return ids, self.evaluate_alerts(sorted({ids[position] for position, _ in readings}))

    def _store_messages_in_one_call(self, rows: Sequence[dict[str, Any]],
                                    readings: Sequence[tuple[int, VitalsReading]],
                                    created_at: datetime) -> tuple[list[int], int]:
        created = created_at.isoformat()
        message_rows = json.dumps([{column: _json_value(value) for column, value in row.items()} for row in rows])
        reading_rows = json.dumps([_json_reading(position, r, created) for position, r in readings])
        ids, touched = driver_execute(self.conn, _STORE_MESSAGES, (message_rows, reading_rows)).fetchone()
        return [int(i) for i in ids], int(touched)

    def add_messages(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Insert message rows in one statement; their new ids, in the order of ``rows``."""
        if not rows:
            return []
        if self._store.message_statements is not None:
            return self._store.message_statements.add_messages(self.conn, rows)
        return [int(row.id) for row in self.conn.execute(_INSERT_MESSAGES, list(rows))]

    def add_readings(self, readings: Sequence[tuple[int, VitalsReading]], created_at: datetime) -> None:
        """Insert (message id, reading) pairs in one driver-level executemany (the hot path's biggest insert)."""
        if not readings:
            return
        stamps: dict[datetime, Any] = {}  # the readings of a message mostly share one time

        def stamp(moment: datetime) -> Any:
            if moment not in stamps:
                stamps[moment] = self._store.timestamp(utc_naive(moment))
            return stamps[moment]

        created = stamp(created_at)
        self._store.readings_insert.execute(self.conn, [
            (message_id, *_reading_values(r, stamp(r.observed_at), created)) for message_id, r in readings
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
            return int(driver_execute(self.conn, "SELECT evaluate_alerts(CAST(%s AS BIGINT[]))", (ids,)).fetchone()[0])
        if dialect == "mssql":
            return int(self.conn.execute(text("EXEC dbo.usp_evaluate_alerts @message_ids = :ids"),
                                         {"ids": ",".join(map(str, ids))}).scalar_one())
        driver = self.conn.connection.driver_connection
        before = driver.total_changes  # type: ignore[union-attr]  # rows the statements insert or update
        parameters = {"message_ids": json.dumps(ids)}
        for statement in self._store._sqlite_evaluation:
            driver_execute(self.conn, statement, parameters)
        return int(driver.total_changes - before)  # type: ignore[union-attr]

    def raised_alerts(self, message_ids: Sequence[int]) -> list[Row]:
        """Alerts raised by these messages' readings (alerts rows plus the raising message_id), oldest first."""
        if not message_ids:
            return []
        return list(self.conn.execute(_RAISED_ALERTS, {"message_ids": [int(i) for i in message_ids]}))

    def notified_since(self, destination: str, alert: Row, since: datetime) -> bool:
        """Did ``destination`` get (or queue) an alert of this patient, vital and kind, at least as severe,
        since ``since``?"""
        severities = ["critical"] if alert.severity == "critical" else ["warning", "critical"]
        return self.conn.execute(_NOTIFIED_SINCE, {
            "destination": destination, "since": utc_naive(since), "patient_id": alert.patient_id,
            "vital": alert.vital, "alert_kind": alert.kind, "severities": severities}).first() is not None

    def add_outbox(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert outbox rows (tuples in OUTBOX_COLUMNS order) in one statement."""
        if not rows:
            return
        stamp = self._store.timestamp
        fixed = []
        for row in rows:
            values = list(row)
            for index in _OUTBOX_TIMES:
                values[index] = stamp(utc_naive(values[index]))
            fixed.append(tuple(values))
        self._store.outbox_insert.execute(self.conn, fixed)
        self.outbox_rows += len(rows)
