"""The SQL Server scripts (sql/mssql/) and the statements the engine sends to SQL Server.

There is no SQL Server here, so most of this works on text: every GO batch is parsed with sqlglot's
T-SQL dialect (nothing may degrade to an opaque Command), the schema is compared with
adapters/sql_tables.py and with the PostgreSQL reference scripts, and every SQLAlchemy statement the
store and the migrations issue is compiled for the mssql dialect. The test marked ``mssql`` runs the
whole engine path against a real server when VITALS_TEST_MSSQL_URL is set (docs/sql-server.md).
"""
from __future__ import annotations

import inspect
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
import sqlglot
from sqlalchemy import BigInteger, Column, DateTime, Float, Integer, String, Text, create_engine, select, text
from sqlalchemy.dialects import mssql
from sqlalchemy.engine import Row, make_url
from sqlalchemy.exc import DBAPIError

from adapters.sql_store import SqlStore, StoreTransaction
from adapters.sql_tables import alerts, device_readings, metadata, schema_version
from engine.channel import Channel, Route
from engine.migrations import SQL_DIR, scripts, statements, upgrade
from tests.messages import fixture, oru
from transforms.vitals import VitalsReading

exp = sqlglot.exp
MSSQL_SCRIPTS = scripts("mssql")
PROCEDURE = "dbo.usp_evaluate_alerts"


def parse(sql: str, dialect: str = "tsql") -> list[sqlglot.Expression]:
    return [tree for tree in sqlglot.parse(sql, read=dialect, error_level=sqlglot.ErrorLevel.RAISE) if tree]


def mssql_trees() -> list[sqlglot.Expression]:
    return [tree for script in MSSQL_SCRIPTS for batch in statements(script.text, "mssql") for tree in parse(batch)]


def postgresql_trees(name: str) -> list[sqlglot.Expression]:
    return parse((SQL_DIR / "postgresql" / name).read_text(encoding="utf-8"), "postgres")


def all_batches() -> list[object]:
    return [pytest.param(batch, id=f"{script.path.name}#{number}")
            for script in MSSQL_SCRIPTS
            for number, batch in enumerate(statements(script.text, "mssql"), 1)]


def procedure() -> exp.Create:
    found = [tree for tree in mssql_trees() if isinstance(tree, exp.Create) and tree.kind == "PROCEDURE"]
    assert len(found) == 1, "expected exactly one CREATE OR ALTER PROCEDURE"
    return found[0]


# --- (a) every batch parses as T-SQL, down to the statements inside the procedure ---------------------

def test_scripts_are_numbered_like_the_postgresql_ones() -> None:
    postgresql = [script.path.name for script in scripts("postgresql")]
    assert [script.path.name for script in MSSQL_SCRIPTS] == postgresql
    for script in MSSQL_SCRIPTS:
        assert re.search(r"^GO$", script.text, re.MULTILINE), f"{script.path.name} has no GO line"


@pytest.mark.parametrize("batch", all_batches())
def test_every_batch_parses_without_opaque_commands(batch: str) -> None:
    trees = parse(batch)
    assert trees
    for tree in trees:
        opaque = [node.sql("tsql")[:80] for node in tree.find_all(exp.Command)]
        assert not opaque, f"sqlglot could only read these as opaque commands: {opaque}"


def test_procedure_body_is_parsed_statement_by_statement() -> None:
    create = procedure()
    assert create.args.get("replace"), "CREATE OR ALTER, so that a re-run updates the procedure"
    assert create.this.this.sql("tsql") == PROCEDURE
    assert [(p.this.sql("tsql"), p.args["kind"].sql("tsql")) for p in create.this.expressions] == \
        [("@message_id", "BIGINT")]
    body = [s for s in create.expression.expressions if not isinstance(s, exp.EndStatement)]
    assert body[0].sql("tsql") == "SET NOCOUNT ON"
    # ONE result set: the last statement is the only SELECT that returns rows to the client.
    assert body[-1].sql("tsql") == "SELECT @touched AS touched"
    assert [s for s in body if isinstance(s, exp.Select)] == [body[-1]]
    assert not any(isinstance(s, exp.Command) for s in body)
    kinds = [type(s).__name__ for s in body]
    assert kinds.count("Insert") == 4 and kinds.count("Update") == 2


def _target(statement: exp.Insert | exp.Update) -> str:
    """The table an INSERT or UPDATE writes to (UPDATE a ... FROM dbo.alerts AS a: dbo.alerts)."""
    table = statement.this.this if isinstance(statement.this, exp.Schema) else statement.this
    for candidate in statement.find_all(exp.Table):
        if candidate.alias == table.name:
            table = candidate
            break
    return exp.table_(table.name, db=table.args.get("db")).sql("tsql")


def test_every_write_to_alerts_locks_the_key_range_and_is_counted() -> None:
    body = [s for s in procedure().expression.expressions if not isinstance(s, exp.EndStatement)]
    writes = [i for i, s in enumerate(body) if isinstance(s, (exp.Insert, exp.Update)) and _target(s) == "dbo.alerts"]
    assert len(writes) == 4  # threshold UPDATE + INSERT, trend UPDATE + INSERT
    for i in writes:
        statement = body[i]
        locked = [table for table in statement.find_all(exp.Table)
                  if table.sql("tsql").startswith("dbo.alerts") and table.args.get("hints")]
        assert locked, f"dbo.alerts is read without lock hints in: {statement.sql('tsql')[:120]}"
        for table in locked:
            hints = {hint.sql("tsql").upper() for h in table.args["hints"] for hint in h.expressions}
            assert {"UPDLOCK", "HOLDLOCK"} <= hints
        if isinstance(statement, exp.Insert):
            assert statement.find(exp.Exists), "an INSERT into dbo.alerts must check WHERE NOT EXISTS"
        assert body[i + 1].sql("tsql") == "SET @touched = @touched + @@ROWCOUNT"


def test_window_functions_use_inline_over_clauses() -> None:
    create = procedure()
    assert not any(select.args.get("windows") for select in create.find_all(exp.Select)), "no WINDOW clause"
    frames = [spec.sql("tsql") for spec in create.find_all(exp.WindowSpec)]
    assert frames == ["ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING"] * 2
    assert "DATEADD(MINUTE, -10, e.end_at)" in create.sql("tsql")


def test_message_texts_use_the_same_literals_as_postgresql() -> None:
    """Same words, states, kinds and separators; only the number formatting differs in how it is said."""
    pg_function = (SQL_DIR / "postgresql" / "003_evaluate_alerts.sql").read_text(encoding="utf-8")
    pg_body = pg_function[pg_function.index("$$"):]
    postgresql = set(re.findall(r"'([^']*)'", pg_body)) - {"UTC", "10 minutes"}  # now() AT TIME ZONE, INTERVAL
    strings = [node for node in procedure().find_all(exp.National, exp.Literal)
               if isinstance(node, exp.National) or node.is_string]
    tsql = {node.this for node in strings} - {"0.##", "en-US"}  # FORMAT's pattern and culture
    assert tsql == postgresql
    for call in procedure().find_all(exp.NumberToStr):  # FORMAT(x, N'0.##', N'en-US')
        culture = call.args.get("culture")
        assert call.args["format"].this == "0.##", call.sql("tsql")
        assert culture is not None and culture.this == "en-US", f"{call.sql('tsql')}: the session language decides"


def test_no_aggregate_drops_a_null() -> None:
    """ "Null value is eliminated by an aggregate" would reach pyodbc ahead of the result set and hide it."""
    for aggregate in procedure().find_all(exp.Max, exp.Min):
        if isinstance(aggregate.parent, exp.Window):
            continue  # over NOT NULL readings; an empty frame gives NULL without a warning
        assert not aggregate.find(exp.Case), f"aggregate over a CASE (NULL when unmatched): {aggregate.sql('tsql')}"
        if aggregate.this.name == "observed_at":
            continue  # MAX(r.observed_at): a NOT NULL column
        where = aggregate.find_ancestor(exp.Select).args.get("where")
        assert where is not None and f"NOT {aggregate.this.sql('tsql')} IS NULL" in where.sql("tsql"), \
            f"{aggregate.sql('tsql')} may meet a NULL: filter NULLs out first"


def test_store_calls_the_procedure_it_declares() -> None:
    source = inspect.getsource(StoreTransaction.evaluate_alerts)
    call = re.search(r'"(EXEC dbo\.usp_evaluate_alerts @message_id = :message_id)"', source)
    assert call, "the store no longer calls EXEC dbo.usp_evaluate_alerts @message_id = :message_id"
    compiled = text(call.group(1)).compile(dialect=mssql.dialect())
    assert str(compiled) == "EXEC dbo.usp_evaluate_alerts @message_id = :message_id"
    assert list(compiled.params) == ["message_id"]


# --- (b) the schema: every table and column of adapters/sql_tables.py, the same as PostgreSQL's -------

@dataclass
class TableDef:
    columns: dict[str, str] = field(default_factory=dict)  # name -> T-SQL type
    nullable: dict[str, bool] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)
    references: dict[str, str] = field(default_factory=dict)  # column -> table(column)
    primary_key: list[str] = field(default_factory=list)
    identity: list[str] = field(default_factory=list)
    checks: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class IndexDef:
    table: str
    columns: tuple[str, ...]
    unique: bool
    where: str


def _neutral(node: sqlglot.Expression) -> str:
    """An expression without dialect accents: N'x' reads as 'x', dbo.t as t, x IS NOT NULL one way."""
    def plain(n: sqlglot.Expression) -> sqlglot.Expression:
        if isinstance(n, exp.National):
            return exp.Literal.string(n.this)
        if isinstance(n, exp.Table):
            return exp.table_(n.name)
        if isinstance(n, exp.Is) and n.args.get("negate"):  # PostgreSQL's reading of IS NOT NULL
            return exp.Not(this=exp.Is(this=n.this.copy(), expression=n.expression.copy()))
        return n
    return node.copy().transform(plain).sql()


def _postgresql_type(data_type: exp.DataType) -> str:
    """The T-SQL type a PostgreSQL column type becomes (the mapping docs/sql-server.md describes)."""
    sql = data_type.sql("postgres")
    varchar = re.fullmatch(r"VARCHAR\((\d+)\)", sql)
    if varchar:
        return f"NVARCHAR({varchar.group(1)})"
    return {"BIGINT": "BIGINT", "INT": "INTEGER", "TEXT": "NVARCHAR(MAX)", "DOUBLE PRECISION": "FLOAT",
            "TIMESTAMP": "DATETIME2(6)"}[sql]


def _tables(trees: list[sqlglot.Expression], dialect: str) -> dict[str, TableDef]:
    tables = {}
    for tree in trees:
        for create in tree.find_all(exp.Create):
            if create.kind != "TABLE":
                continue
            table = tables.setdefault(create.this.this.name, TableDef())
            for column in create.this.expressions:
                if not isinstance(column, exp.ColumnDef):
                    continue
                name, kind = column.name, column.args["kind"]
                table.columns[name] = kind.sql("tsql") if dialect == "tsql" else _postgresql_type(kind)
                constraints = [c.args["kind"] for c in column.args.get("constraints") or []]
                table.nullable[name] = not any(
                    isinstance(c, exp.PrimaryKeyColumnConstraint)
                    or (isinstance(c, exp.NotNullColumnConstraint) and not c.args.get("allow_null"))
                    for c in constraints)
                for constraint in constraints:
                    if isinstance(constraint, exp.DefaultColumnConstraint):
                        table.defaults[name] = _neutral(constraint.this)
                    elif isinstance(constraint, exp.Reference):
                        target = constraint.this
                        table.references[name] = f"{target.this.name}({', '.join(c.name for c in target.expressions)})"
                    elif isinstance(constraint, exp.PrimaryKeyColumnConstraint):
                        table.primary_key.append(name)
                    elif isinstance(constraint, exp.GeneratedAsIdentityColumnConstraint):
                        table.identity.append(name)
            table.checks |= {_neutral(check.this) for check in create.this.find_all(exp.CheckColumnConstraint)}
    return tables


def _indexes(trees: list[sqlglot.Expression]) -> dict[str, IndexDef]:
    found = {}
    for tree in trees:
        for create in tree.find_all(exp.Create):
            if not isinstance(create.this, exp.Index):
                continue
            index, params = create.this, create.this.args["params"]
            where = params.args.get("where")
            found[index.name] = IndexDef(index.args["table"].name, tuple(c.this.name for c in params.args["columns"]),
                                         bool(create.args.get("unique")), _neutral(where.this) if where else "")
    return found


def _sqlalchemy_type(column: Column) -> str:
    kind = column.type
    if isinstance(kind, BigInteger):
        return "BIGINT"
    if isinstance(kind, Integer):
        return "INTEGER"
    if isinstance(kind, Text):
        return "NVARCHAR(MAX)"
    if isinstance(kind, String):
        return f"NVARCHAR({kind.length})"
    if isinstance(kind, Float):
        return "FLOAT"
    if isinstance(kind, DateTime):
        return "DATETIME2(6)"
    raise AssertionError(f"no T-SQL type known for {column}")


def test_schema_creates_every_table_and_column_of_sql_tables() -> None:
    created = _tables(mssql_trees(), "tsql")
    for table in metadata.sorted_tables:
        assert table.name in created, f"sql/mssql does not create {table.name}"
        ours = created[table.name]
        assert list(ours.columns) == [c.name for c in table.columns], table.name
        for column in table.columns:
            assert ours.columns[column.name] == _sqlalchemy_type(column), f"{table.name}.{column.name}"
            if not column.primary_key:
                assert ours.nullable[column.name] == column.nullable, f"{table.name}.{column.name} nullability"
        assert ours.primary_key == [c.name for c in table.primary_key.columns], table.name


def test_schema_matches_postgresql_table_for_table() -> None:
    assert _tables(mssql_trees(), "tsql") == _tables(postgresql_trees("001_schema.sql"), "postgres")


def test_schema_has_the_postgresql_indexes_with_the_same_filters() -> None:
    assert _indexes(mssql_trees()) == _indexes(postgresql_trees("001_schema.sql"))


def test_every_object_is_created_only_if_missing() -> None:
    """Re-running a script must not fail: tables and indexes are guarded, the procedure is CREATE OR ALTER."""
    for script in MSSQL_SCRIPTS:
        for batch in statements(script.text, "mssql"):
            for tree in parse(batch):
                creates = list(tree.find_all(exp.Create))
                if not creates or (isinstance(tree, exp.Create) and tree.kind == "PROCEDURE"):
                    continue
                assert isinstance(tree, exp.IfBlock), f"unguarded CREATE in {script.path.name}: {batch[:80]}"
                guard = tree.this.sql("tsql")
                name = creates[0].this.this.name if creates[0].kind == "TABLE" else creates[0].this.name
                assert name in guard, f"the guard of {name} checks something else: {guard}"


def test_default_thresholds_are_the_postgresql_rows() -> None:
    def rows(trees: list[sqlglot.Expression]) -> list[tuple[str, ...]]:
        [insert_] = [t for t in trees if isinstance(t, exp.Insert)]
        assert insert_.this.this.name == "alert_thresholds"
        values = insert_.find(exp.Values)
        return [tuple(_neutral(v) for v in row.expressions) for row in values.expressions]

    tsql = [t for batch in statements(MSSQL_SCRIPTS[1].text, "mssql") for t in parse(batch)]
    assert rows(tsql) == rows(postgresql_trees("002_default_thresholds.sql"))
    assert len(rows(tsql)) == 9


# --- (c) every statement the store and the migrations issue compiles for SQL Server ----------------------

class _RecordingConnection:
    """Stands in for a Connection: keeps what the store executes, answers like an empty database."""

    def __init__(self) -> None:
        self.executed: list[tuple[object, object]] = []

    def execute(self, statement: object, parameters: object = None) -> SimpleNamespace:
        self.executed.append((statement, parameters))
        return SimpleNamespace(all=lambda: [], scalar_one=lambda: 1)


def _store_statements() -> list[tuple[object, object]]:
    conn = _RecordingConnection()
    tx = StoreTransaction(conn, SimpleNamespace(dialect="mssql"))  # type: ignore[arg-type]
    tx.messages_with_key("VITALSCART", "WARD7", "VC-0001")
    tx.add_message(route="default", control_id="VC-0001", sending_application="VITALSCART",
                   sending_facility="WARD7", message_type="ORU^R01", version="2.5.1", content_hash="0" * 64,
                   raw="MSH|...", peer="", status="STORED", ack_code="AA", ack="MSH|...", error=None,
                   reading_count=1, received_at=datetime(2024, 3, 5, 10, 15), processed_at=datetime(2024, 3, 5, 10, 15))
    reading = VitalsReading("MRN1001", "VITALSCART", "heart_rate", 72.0, "/min",
                            datetime(2024, 3, 5, 10, 10, tzinfo=UTC), "F", "LN", "8867-4", "72", "/min",
                            "VC-0001")
    tx.add_readings(1, [reading, reading], datetime(2024, 3, 5, 10, 15))
    tx.evaluate_alerts(1)
    return conn.executed


def test_store_statements_compile_for_mssql() -> None:
    executed = _store_statements()
    compiled = []
    for statement, parameters in executed:
        many = isinstance(parameters, list)
        keys = list(parameters[0]) if many else None
        compiled.append(" ".join(str(statement.compile(dialect=mssql.dialect(), column_keys=keys,
                                                       for_executemany=many)).split()))
    messages_with_key, add_message, add_readings, evaluate = compiled
    assert messages_with_key == (
        "SELECT messages.id, messages.content_hash, messages.status, messages.ack, messages.duplicate_of "
        "FROM messages WHERE messages.sending_application = :sending_application_1 "
        "AND messages.sending_facility = :sending_facility_1 AND messages.control_id = :control_id_1 "
        "ORDER BY messages.id")
    assert add_message.startswith("INSERT INTO messages (route, control_id,")
    assert "OUTPUT inserted.id VALUES" in add_message  # RETURNING becomes OUTPUT on SQL Server
    assert add_readings == (
        "INSERT INTO device_readings (message_id, patient_id, device_id, vital, value, unit, observed_at, status, "
        "source_system, source_code, source_value, source_unit, created_at) VALUES (:message_id, :patient_id, "
        ":device_id, :vital, :value, :unit, :observed_at, :status, :source_system, :source_code, :source_value, "
        ":source_unit, :created_at)")
    assert evaluate == "EXEC dbo.usp_evaluate_alerts @message_id = :message_id"


def test_migration_statements_compile_for_mssql() -> None:
    # Built as engine/migrations.py builds them.
    record = schema_version.insert().values(version=1, name="001_schema.sql", checksum="0" * 64,
                                            applied_at=datetime(2024, 1, 1))
    applied = select(schema_version.c.version, schema_version.c.checksum)
    assert " ".join(str(record.compile(dialect=mssql.dialect())).split()) == (
        "INSERT INTO schema_version (version, name, checksum, applied_at) "
        "VALUES (:version, :name, :checksum, :applied_at)")
    assert " ".join(str(applied.compile(dialect=mssql.dialect())).split()) == (
        "SELECT schema_version.version, schema_version.checksum FROM schema_version")


def test_documented_urls_make_an_mssql_store() -> None:
    docs = (SQL_DIR.parent / "docs" / "sql-server.md").read_text(encoding="utf-8")
    urls = set(re.findall(r"mssql\+pyodbc://[^\s']+", docs))
    assert len(urls) >= 2
    for url in urls:
        store = SqlStore.from_url(url)  # no connection is made until one is needed
        assert store.dialect == "mssql" and store.engine.driver == "pyodbc", url
        assert make_url(url).query["driver"] in {"ODBC Driver 18 for SQL Server", "FreeTDS"}, url
        store.close()


# --- (d) the whole engine path on a real SQL Server ------------------------------------------------------

def _mssql_url() -> str:
    url = os.environ.get("VITALS_TEST_MSSQL_URL")
    if not url:
        pytest.skip("VITALS_TEST_MSSQL_URL is not set (mssql+pyodbc://...; see docs/sql-server.md)")
    return url


def _with_control_id_suffix(raw: bytes, suffix: str) -> bytes:
    """The message with MSH-10 made unique, so that every run stores and evaluates it afresh."""
    msh, separator, rest = raw.partition(b"\r")
    fields = msh.split(b"|")
    fields[9] += b"-" + suffix.encode()
    return b"|".join(fields) + separator + rest


def _check_engine_path(url: str, dialect: str) -> None:
    """Upgrade, then ingest fixtures and a trend scenario through the channel; check readings and alerts.

    Leaves what it stored, and takes what earlier runs left: control ids and one patient are new each run.
    """
    store = SqlStore.from_url(url)
    try:
        assert store.dialect == dialect
        upgrade(store.engine)
        assert upgrade(store.engine) == []  # nothing left to apply
        channel, route, run = Channel(store), Route(), uuid.uuid4().hex[:12]

        def active_alerts(patient_id: str) -> dict[tuple[str, str, str], Row]:
            with store.engine.connect() as conn:
                rows = conn.execute(select(alerts).where(alerts.c.patient_id == patient_id,
                                                         alerts.c.state != "resolved")).all()
            return {(row.vital, row.severity, row.kind): row for row in rows}

        def reading_ids(message_id: int | None) -> set[int]:
            with store.engine.connect() as conn:
                return set(conn.execute(select(device_readings.c.id)
                                        .where(device_readings.c.message_id == message_id)).scalars())

        loinc = _with_control_id_suffix(fixture("loinc_vitals_v251.hl7"), run)
        receipt = channel.dispatch(loinc, route)
        assert (receipt.status, receipt.readings, receipt.alerts) == ("STORED", 7, 0), receipt.error
        assert len(reading_ids(receipt.message_id)) == 7
        again = channel.dispatch(loinc, route)
        assert again.duplicate and again.message_id == receipt.message_id and again.acks == receipt.acks

        receipt = channel.dispatch(_with_control_id_suffix(fixture("multi_patient_v24.hl7"), run), route)
        assert (receipt.status, receipt.readings, receipt.alerts) == ("STORED", 4, 3), receipt.error
        stored = reading_ids(receipt.message_id)
        assert len(stored) == 4
        w3_1, w3_2 = active_alerts("W3-1"), active_alerts("W3-2")
        assert w3_1["spo2", "warning", "threshold"].message == "spo2 93 % below warning low 94"
        assert w3_2["heart_rate", "critical", "threshold"].message == "heart_rate 145 /min above critical high 140"
        assert w3_2["resp_rate", "critical", "threshold"].message == "resp_rate 31 /min above critical high 30"
        for alert in (w3_1["spo2", "warning", "threshold"], w3_2["heart_rate", "critical", "threshold"]):
            assert alert.last_reading_id in stored  # an earlier run's alert is updated, not duplicated

        # A patient of this run only: threshold alerts, their update, and the 10-minute trend alert.
        patient = f"MSSQL-{run}"
        receipts = [
            channel.dispatch(oru(f"{run}-1", patient, "20240910220000",
                                 [("heart_rate", 80), ("spo2", 98), ("temperature", 35.991)]), route),
            channel.dispatch(oru(f"{run}-2", patient, "20240910220500", [("heart_rate", 105), ("spo2", 92)]), route),
            channel.dispatch(oru(f"{run}-3", patient, "20240910220700", [("heart_rate", 110.255), ("spo2", 91.5)]),
                             route),
        ]
        assert [(r.status, r.alerts) for r in receipts] == [("STORED", 1), ("STORED", 2), ("STORED", 2)]
        found = active_alerts(patient)
        assert set(found) == {("temperature", "warning", "threshold"), ("spo2", "warning", "threshold"),
                              ("heart_rate,spo2", "critical", "trend")}
        assert found["temperature", "warning", "threshold"].message == "temperature 35.99 Cel below warning low 36"
        low_spo2 = found["spo2", "warning", "threshold"]
        assert (low_spo2.message, low_spo2.value, low_spo2.last_value, low_spo2.occurrences) == \
            ("spo2 91.5 % below warning low 94", 92.0, 91.5, 2)
        trend = found["heart_rate,spo2", "critical", "trend"]
        # 110.255 - 80 is 30.254999999999995 as a double; PostgreSQL reads it as 30.2550000000000, so 30.26.
        assert trend.message == "heart rate rose 30.26 /min and spo2 fell 6.5 % within 10 minutes"
        assert (trend.value, trend.occurrences, trend.state) == (25.0, 2, "open")
        assert (trend.first_seen_at, trend.last_seen_at) == (datetime(2024, 9, 10, 22, 5), datetime(2024, 9, 10, 22, 7))
        assert trend.last_reading_id in reading_ids(receipts[-1].message_id)
    finally:
        store.close()


@pytest.mark.mssql
def test_engine_path_on_sql_server() -> None:
    _check_engine_path(_mssql_url(), "mssql")


def test_engine_path_expectations_hold_on_sqlite(sqlite_url: str) -> None:
    """The same run on the embedded SQLite twin, so the SQL Server test expects what the engine does."""
    _check_engine_path(sqlite_url, "sqlite")


@contextmanager
def _fresh_mssql_database(url: str) -> Iterator[str]:
    """A new database (case-sensitive, as docs/sql-server.md asks) on the server of ``url``, dropped after."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"vitals_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE [{name}] COLLATE Latin1_General_100_CS_AS_SC")
    except DBAPIError as error:
        admin.dispose()
        pytest.skip(f"the login of VITALS_TEST_MSSQL_URL cannot create a database: {error.orig}")
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"ALTER DATABASE [{name}] SET SINGLE_USER WITH ROLLBACK IMMEDIATE")
            conn.exec_driver_sql(f"DROP DATABASE [{name}]")
        admin.dispose()


@pytest.mark.mssql
def test_sql_server_leaves_the_same_readings_and_alerts_as_sqlite(sqlite_url: str) -> None:
    """Every alert scenario, one after another in one database, row for row as on SQLite (texts included)."""
    from tests.test_alert_evaluation import SCENARIOS, run, snapshot

    url = _mssql_url()
    snapshots = []
    with _fresh_mssql_database(url) as fresh:
        for each in (sqlite_url, fresh):
            store = SqlStore.from_url(each)
            try:
                upgrade(store.engine)
                for scenario in SCENARIOS:
                    run(store, scenario)
                snapshots.append(snapshot(store))
            finally:
                store.close()
    assert snapshots[0]["readings"] == snapshots[1]["readings"]
    assert snapshots[0]["alerts"] == snapshots[1]["alerts"]
    assert len(snapshots[0]["alerts"]) > 10
