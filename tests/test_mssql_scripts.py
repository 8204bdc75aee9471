"""The SQL Server scripts (sql/mssql/) and the statements the engine sends to SQL Server.

There is no SQL Server here, so most of this works on text: every GO batch is parsed with sqlglot's
T-SQL dialect (nothing may degrade to an opaque Command), the schema is compared with
adapters/sql_tables.py and with the PostgreSQL reference scripts, and every SQLAlchemy statement the
store and the migrations issue is compiled for the mssql dialect. The procedure evaluates a batch of
messages (one group commit) as the PostgreSQL function does: its windows are compared with the function's.
The tests marked ``mssql`` run the whole engine path, single messages and batches, against a real server
when VITALS_TEST_MSSQL_URL is set (docs/sql-server.md).
"""
from __future__ import annotations

import inspect
import os
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
import sqlglot
from sqlalchemy import BigInteger, Boolean, Column, DateTime, Float, Integer, String, Text, create_engine, select, text
from sqlalchemy.dialects import mssql
from sqlalchemy.engine import Row, make_url
from sqlalchemy.exc import DBAPIError

from adapters.sql_store import SqlStore, StoreTransaction
from adapters.sql_tables import alerts, device_readings, metadata, schema_version
from engine.channel import Channel, Inbound, Receipt, Route
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


def postgresql_schema_trees() -> list[sqlglot.Expression]:
    """Every PostgreSQL script that creates tables and indexes (the evaluation function is compared apart)."""
    return [tree for script in scripts("postgresql") if "evaluate" not in script.path.name
            for tree in postgresql_trees(script.path.name)]


def all_batches() -> list[object]:
    return [pytest.param(batch, id=f"{script.path.name}#{number}")
            for script in MSSQL_SCRIPTS
            for number, batch in enumerate(statements(script.text, "mssql"), 1)]


def procedure() -> exp.Create:
    found = [tree for tree in mssql_trees() if isinstance(tree, exp.Create) and tree.kind == "PROCEDURE"]
    assert len(found) == 1, "expected exactly one CREATE OR ALTER PROCEDURE"
    return found[0]


def procedure_body() -> list[sqlglot.Expression]:
    return [s for s in procedure().expression.expressions if not isinstance(s, exp.EndStatement)]


def _plain_sql(sql: str) -> str:
    """SQL without comments, with one space for any run of white space."""
    return " ".join(re.sub(r"--[^\n]*", "", sql).split())


def postgresql_function_body() -> str:
    function = (SQL_DIR / "postgresql" / "003_evaluate_alerts.sql").read_text(encoding="utf-8")
    return _plain_sql(function[function.index("$$"):])


def procedure_text() -> str:
    """The procedure as written, without comments; N'x' read as 'x' and dbo.t as t, like PostgreSQL's."""
    [batch] = [b for b in statements(MSSQL_SCRIPTS[2].text, "mssql") if "CREATE OR ALTER PROCEDURE" in b]
    return _plain_sql(batch).replace("N'", "'").replace("dbo.", "")


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
        [("@message_ids", "NVARCHAR(MAX)")]
    body = procedure_body()
    assert body[0].sql("tsql") == "SET NOCOUNT ON"
    # ONE result set: the last statement is the only SELECT that returns rows to the client.
    assert body[-1].sql("tsql") == "SELECT @touched AS touched"
    assert [s for s in body if isinstance(s, exp.Select)] == [body[-1]]
    assert not any(isinstance(s, exp.Command) for s in body)
    kinds = [type(s).__name__ for s in body]
    # @batch, @threshold, dbo.alerts (threshold), @trend, dbo.alerts (trend); dbo.alerts twice.
    assert kinds.count("Insert") == 5 and kinds.count("Update") == 2


def test_the_id_list_is_split_once_into_a_table_of_bigint_ids() -> None:
    """'12,13,15' (the store's string) becomes @batch first; every later statement reads @batch, never the text."""
    body = procedure_body()
    split = next(s for s in body if isinstance(s, exp.Insert))
    assert split.this.this.sql("tsql") == "@batch", "the first INSERT must fill @batch"
    sql = split.sql("tsql")
    assert "FROM STRING_SPLIT(@message_ids, N',') AS s" in sql
    assert "CAST(s.value AS BIGINT)" in sql and "SELECT DISTINCT" in sql  # '12,12' is one message
    assert "LTRIM(RTRIM(s.value)) <> N''" in sql  # CAST(N'' AS BIGINT) would be message 0
    assert [s for s in body if "@message_ids" in s.sql("tsql")] == [split]
    declared = [s.sql("tsql") for s in body if isinstance(s, exp.Declare) and "@batch TABLE" in s.sql("tsql")]
    assert len(declared) == 1 and "id BIGINT NOT NULL PRIMARY KEY" in declared[0]
    for statement in body[body.index(split) + 1:]:
        if statement.find(exp.Table) and "device_readings" in statement.sql("tsql"):
            assert "SELECT b.id FROM @batch AS b" in statement.sql("tsql"), statement.sql("tsql")[:120]


_WINDOW = re.compile(r"(\w+\([^()]*\)) OVER \(([^()]*)\)")


def test_windows_are_the_postgresql_function_windows() -> None:
    """Same aggregates over the same partitions and orders: per-message picks (message_id in the partition),
    then one row per alert key across the batch (first by message id, last by observation, then message id)."""
    postgresql = sorted(_WINDOW.findall(postgresql_function_body()))
    tsql = sorted(_WINDOW.findall(procedure_text()))
    assert len(postgresql) == 14
    assert tsql == postgresql


def test_a_later_message_of_the_batch_stays_out_of_an_earlier_window() -> None:
    """Both passes over the trend window (spread, then rise and fall) hide later messages of the batch."""
    visible = re.compile(r"r\.observed_at >= (.+?) AND r\.observed_at <= e\.end_at AND "
                         r"\(r\.message_id <= e\.message_id OR r\.message_id NOT IN \(SELECT (b\.)?id FROM (@)?batch")
    postgresql = [m.group(1) for m in visible.finditer(postgresql_function_body())]
    tsql = [m.group(1) for m in visible.finditer(procedure_text())]
    assert postgresql == ["e.end_at - INTERVAL '10 minutes'"] * 2
    assert tsql == ["DATEADD(MINUTE, -10, e.end_at)"] * 2


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
    postgresql = set(re.findall(r"'([^']*)'", postgresql_function_body()))
    postgresql -= {"UTC", "10 minutes"}  # now() AT TIME ZONE 'UTC', INTERVAL '10 minutes'
    strings = [node for node in procedure().find_all(exp.National, exp.Literal)
               if isinstance(node, exp.National) or node.is_string]
    # FORMAT's pattern and culture; STRING_SPLIT's separator and the empty item it may give
    tsql = {node.this for node in strings} - {"0.##", "en-US", ",", ""}
    assert tsql == postgresql
    for call in procedure().find_all(exp.NumberToStr):  # FORMAT(x, N'0.##', N'en-US')
        culture = call.args.get("culture")
        assert call.args["format"].this == "0.##", call.sql("tsql")
        assert culture is not None and culture.this == "en-US", f"{call.sql('tsql')}: the session language decides"


def _not_null_reading_column(aggregate: exp.Expression) -> bool:
    """MAX(r.value) where r is dbo.device_readings and value is one of its NOT NULL columns."""
    column = aggregate.this
    if not isinstance(column, exp.Column) or column.name not in device_readings.c:
        return False
    tables = aggregate.find_ancestor(exp.Select).find_all(exp.Table)
    bound = [t for t in tables if t.alias_or_name == column.table]
    return bool(bound) and bound[0].sql("tsql").startswith("dbo.device_readings") \
        and not device_readings.c[column.name].nullable


def test_no_aggregate_drops_a_null() -> None:
    """ "Null value is eliminated by an aggregate" would reach pyodbc ahead of the result set and hide it."""
    aggregates = list(procedure().find_all(exp.Max, exp.Min, exp.Sum))
    assert len(aggregates) >= 10
    for aggregate in aggregates:
        if isinstance(aggregate.parent, exp.Window):
            continue  # over NOT NULL readings; an empty frame gives NULL without a warning
        assert not aggregate.find(exp.Case), f"aggregate over a CASE (NULL when unmatched): {aggregate.sql('tsql')}"
        if _not_null_reading_column(aggregate):
            continue  # MAX(r.observed_at), MAX(r.value) - MIN(r.value): NOT NULL columns
        where = aggregate.find_ancestor(exp.Select).args.get("where")
        assert where is not None and f"NOT {aggregate.this.sql('tsql')} IS NULL" in where.sql("tsql"), \
            f"{aggregate.sql('tsql')} may meet a NULL: filter NULLs out first"


def test_store_calls_the_procedure_it_declares() -> None:
    source = inspect.getsource(StoreTransaction.evaluate_alerts)
    call = re.search(r'"(EXEC dbo\.usp_evaluate_alerts (@\w+) = :(\w+))"', source)
    assert call, "the store no longer calls EXEC dbo.usp_evaluate_alerts @... = :..."
    [parameter] = procedure().this.expressions
    assert call.group(2) == parameter.this.sql("tsql") == "@message_ids"
    compiled = text(call.group(1)).compile(dialect=mssql.dialect())
    assert str(compiled) == "EXEC dbo.usp_evaluate_alerts @message_ids = :ids"
    assert list(compiled.params) == [call.group(3)]


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
            "TIMESTAMP": "DATETIME2(6)", "BOOLEAN": "BIT"}[sql]


def _tables(trees: list[sqlglot.Expression], dialect: str) -> dict[str, TableDef]:
    """Tables as their CREATE TABLE statements and any later ALTER TABLE ... ADD make them."""
    tables = {}
    for tree in trees:
        for create in tree.find_all(exp.Create):
            if create.kind != "TABLE":
                continue
            table = tables.setdefault(create.this.this.name, TableDef())
            for column in create.this.expressions:
                if isinstance(column, exp.ColumnDef):
                    _add_column(table, column, dialect)
            table.checks |= {_neutral(check.this) for check in create.this.find_all(exp.CheckColumnConstraint)}
        for alter in tree.find_all(exp.Alter):
            for column in alter.args.get("actions") or []:
                if isinstance(column, exp.ColumnDef):
                    _add_column(tables[alter.this.name], column, dialect)
    return tables


def _add_column(table: TableDef, column: exp.ColumnDef, dialect: str) -> None:
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
    if isinstance(kind, Boolean):
        return "BIT"
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
    assert _tables(mssql_trees(), "tsql") == _tables(postgresql_schema_trees(), "postgres")


def test_schema_has_the_postgresql_indexes_with_the_same_filters() -> None:
    assert _indexes(mssql_trees()) == _indexes(postgresql_schema_trees())


def test_every_object_is_created_only_if_missing() -> None:
    """Re-running a script must not fail: tables and indexes are guarded; the procedure and the views (which
    must open their batch, so no IF can guard them) are CREATE OR ALTER."""
    for script in MSSQL_SCRIPTS:
        for batch in statements(script.text, "mssql"):
            for tree in parse(batch):
                creates = list(tree.find_all(exp.Create))
                if not creates or (isinstance(tree, exp.Create) and tree.kind in ("PROCEDURE", "VIEW")
                                   and tree.args.get("replace")):
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

class _Result:
    def __init__(self, rows: list[SimpleNamespace]):
        self.rows = rows

    def __iter__(self) -> Iterator[SimpleNamespace]:
        return iter(self.rows)

    def all(self) -> list[SimpleNamespace]:
        return self.rows

    def scalar_one(self) -> int:
        return 1


class _RecordingConnection:
    """Stands in for a Connection: keeps what the store executes, answers like an empty database (an
    INSERT of n rows with RETURNING gives ids 1 to n)."""

    def __init__(self) -> None:
        self.executed: list[tuple[object, object]] = []

    def execute(self, statement: object, parameters: object = None) -> _Result:
        self.executed.append((statement, parameters))
        rows = len(parameters) if isinstance(parameters, list) else 0
        return _Result([SimpleNamespace(id=n) for n in range(1, rows + 1)])

    def exec_driver_sql(self, statement: str, parameters: object = None) -> _Result:
        return self.execute(statement, parameters)


def _store_statements() -> list[tuple[object, object]]:
    conn = _RecordingConnection()
    store = SqlStore.from_url("mssql+pyodbc://u:p@host:1433/vitals?driver=ODBC+Driver+18+for+SQL+Server")
    try:
        tx = StoreTransaction(conn, store)  # type: ignore[arg-type]
        assert tx.messages_with_keys([("VITALSCART", "WARD7", "VC-0001"), ("VITALSCART", "WARD7", "VC-0002")]) == {}
        row = dict(route="default", control_id="VC-0001", sending_application="VITALSCART",
                   sending_facility="WARD7", message_type="ORU^R01", version="2.5.1", content_hash="0" * 64,
                   raw="MSH|...", peer="", status="STORED", ack_code="AA", ack="MSH|...", error=None,
                   reading_count=1, duplicate_of=None, received_at=datetime(2024, 3, 5, 10, 15),
                   processed_at=datetime(2024, 3, 5, 10, 15))
        assert tx.add_messages([row, {**row, "control_id": "VC-0002"}]) == [1, 2]
        reading = VitalsReading("MRN1001", "VITALSCART", "heart_rate", 72.0, "/min",
                                datetime(2024, 3, 5, 10, 10, tzinfo=UTC), "F", "LN", "8867-4", "72", "/min",
                                "VC-0001")
        tx.add_readings([(1, reading), (2, reading)], datetime(2024, 3, 5, 10, 15))
        assert tx.evaluate_alerts([12, 13, 15]) == 1
    finally:
        store.close()
    return conn.executed


def test_store_statements_compile_for_mssql() -> None:
    executed = _store_statements()
    compiled = []
    for statement, parameters in executed:
        many = isinstance(parameters, list)
        keys = list(parameters[0]) if many else None
        if isinstance(parameters, dict) and hasattr(statement, "params"):
            statement = statement.params(**parameters)  # expanding IN parameters render with their values
        compiled.append(" ".join(str(statement.compile(dialect=mssql.dialect(), column_keys=keys, for_executemany=many,
                                                       compile_kwargs={"render_postcompile": True})).split()))
    messages_with_keys, add_messages, add_readings, evaluate = compiled
    assert messages_with_keys == (
        "SELECT messages.id, messages.sending_application, messages.sending_facility, messages.control_id, "
        "messages.content_hash, messages.status, messages.ack, messages.duplicate_of "
        "FROM messages WHERE messages.control_id IN (:control_ids_1, :control_ids_2) ORDER BY messages.id")
    assert add_messages.startswith("INSERT INTO messages (route, control_id,")
    # RETURNING becomes OUTPUT; many rows go as one INSERT ... SELECT whose IDENTITY values follow the
    # rows' order, so that the ids come back in the order of the rows (sort_by_parameter_order).
    assert "OUTPUT inserted.id, inserted.id AS id__1 SELECT p0, p1," in add_messages
    assert add_messages.endswith("sen_counter) ORDER BY sen_counter")
    assert add_readings == (
        "INSERT INTO device_readings (message_id, patient_id, device_id, vital, value, unit, observed_at, status, "
        "source_system, source_code, source_value, source_unit, comparator, created_at) VALUES (:message_id, "
        ":patient_id, :device_id, :vital, :value, :unit, :observed_at, :status, :source_system, :source_code, "
        ":source_value, :source_unit, :comparator, :created_at)")
    assert evaluate == "EXEC dbo.usp_evaluate_alerts @message_ids = :ids"
    assert executed[-1][1] == {"ids": "12,13,15"}  # the list the procedure splits


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


def _record_evaluations(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """The message ids of every alert evaluation of one message or more that returned, in call order.

    Channel.dispatch_batch stores one by one when its shared transaction fails, so a procedure that fails on
    a batch would go unseen in the stored rows: tests check that each batch was evaluated in ONE call.
    """
    calls: list[list[int]] = []
    evaluate = StoreTransaction.evaluate_alerts

    def recording(self: StoreTransaction, message_ids: Sequence[int]) -> int:
        touched = evaluate(self, message_ids)
        if message_ids:
            calls.append(list(message_ids))
        return touched

    monkeypatch.setattr(StoreTransaction, "evaluate_alerts", recording)
    return calls


def _batch_scenario(patient: str, prefix: str) -> list[bytes]:
    """Five messages of one patient, 2024-09-11 08:00 to 08:07, that a group commit may store together.

    Two critical heart rates in one message (one pick, two occurrences); a message observed before the
    ones stored ahead of it (08:03: it adds occurrences and moves first_seen_at, but leaves the last value);
    two messages observed at the same moment (08:07: the later message gives the last value); a trend in
    the third message whose window must not see the fourth and fifth (else its rise would be 75, not 70).
    """
    return [
        oru(f"{prefix}-1", patient, "20240911080000", [("heart_rate", 80), ("spo2", 98)]),
        oru(f"{prefix}-2", patient, "20240911080400", [("heart_rate", 145), ("heart_rate", 150), ("spo2", 96)]),
        oru(f"{prefix}-3", patient, "20240911080700", [("heart_rate", 125), ("spo2", 92)]),
        oru(f"{prefix}-4", patient, "20240911080300", [("heart_rate", 155), ("spo2", 93.25)], device="MON-2"),
        oru(f"{prefix}-5", patient, "20240911080700", [("heart_rate", 99), ("spo2", 91.5)], device="MON-3"),
    ]


def _check_engine_path(url: str, dialect: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Upgrade, then ingest fixtures, a trend scenario and a batch through the channel; check readings and alerts.

    Leaves what it stored, and takes what earlier runs left: control ids and patients are new each run.
    """
    evaluations = _record_evaluations(monkeypatch)
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

        # Group commit: the same five messages, one by one for one patient and as ONE batch (one transaction,
        # one call of the procedure) for another; the batch must leave exactly what the single messages leave.
        def alert_summary(patient_id: str) -> list[tuple]:
            with store.engine.connect() as conn:
                order = {rid: n for n, rid in enumerate(conn.execute(
                    select(device_readings.c.id).where(device_readings.c.patient_id == patient_id)
                    .order_by(device_readings.c.id)).scalars())}
                rows = conn.execute(select(alerts).where(alerts.c.patient_id == patient_id)).all()
            return sorted((r.vital, r.severity, r.kind, r.state, r.occurrences, r.value, r.last_value, r.message,
                           r.device_id, r.first_seen_at, r.last_seen_at, order[r.reading_id], order[r.last_reading_id])
                          for r in rows)

        alone, batched = f"MSSQL-{run}-A", f"MSSQL-{run}-B"
        singles = [channel.dispatch(raw, route) for raw in _batch_scenario(alone, f"{run}-A")]
        assert [(r.status, r.alerts) for r in singles] == [("STORED", 0), ("STORED", 1), ("STORED", 3),
                                                           ("STORED", 2), ("STORED", 2)]
        evaluations.clear()
        receipts = channel.dispatch_batch([Inbound(raw, route) for raw in _batch_scenario(batched, f"{run}-B")])
        assert [r.status for r in receipts] == ["STORED"] * 5, [r.error for r in receipts]
        assert evaluations == [[r.message_id for r in receipts]], "the batch was not evaluated in one call"
        summary = alert_summary(batched)
        assert summary == alert_summary(alone)
        eight = datetime(2024, 9, 11, 8, 0)
        # (vital, severity, kind, occurrences, value, last_value, message, first seen, last seen, first and last
        # reading as the patient's n-th reading)
        assert [(row[:3] + row[4:8] + row[9:]) for row in summary] == [
            ("heart_rate", "critical", "threshold", 3, 150.0, 150.0, "heart_rate 150 /min above critical high 140",
             eight.replace(minute=3), eight.replace(minute=4), 3, 3),
            ("heart_rate", "warning", "threshold", 1, 125.0, 125.0, "heart_rate 125 /min above warning high 120",
             eight.replace(minute=7), eight.replace(minute=7), 5, 5),
            ("heart_rate,spo2", "critical", "trend", 2, 70.0, 75.0,
             "heart rate rose 75 /min and spo2 fell 6.5 % within 10 minutes",
             eight.replace(minute=7), eight.replace(minute=7), 6, 10),
            ("spo2", "warning", "threshold", 3, 92.0, 91.5, "spo2 91.5 % below warning low 94",
             eight.replace(minute=3), eight.replace(minute=7), 6, 10),
        ]
        assert [row[8] for row in summary][2:] == ["MON-3", "MON-3"]  # the last message's device
    finally:
        store.close()


@pytest.mark.mssql
def test_engine_path_on_sql_server(monkeypatch: pytest.MonkeyPatch) -> None:
    _check_engine_path(_mssql_url(), "mssql", monkeypatch)


def test_engine_path_expectations_hold_on_sqlite(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same run on the embedded SQLite twin, so the SQL Server test expects what the engine does."""
    _check_engine_path(sqlite_url, "sqlite", monkeypatch)


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


@pytest.mark.mssql
def test_sql_server_evaluates_batches_as_sqlite_evaluates_single_messages(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Group commit on SQL Server (7 messages a transaction, one procedure call each) leaves, row for row,
    what SQLite leaves with one message a transaction."""
    from tests.test_alert_evaluation import SCENARIOS, snapshot

    url = _mssql_url()
    raws = [raw for scenario in SCENARIOS.values() if not scenario[1] for raw in scenario[0]]
    evaluations = _record_evaluations(monkeypatch)
    snapshots = []
    with _fresh_mssql_database(url) as fresh:
        for each, size in ((sqlite_url, 1), (fresh, 7)):
            store = SqlStore.from_url(each)
            try:
                upgrade(store.engine)
                channel = Channel(store)
                for start in range(0, len(raws), size):
                    evaluations.clear()
                    receipts: list[Receipt] = channel.dispatch_batch(
                        [Inbound(raw, Route()) for raw in raws[start:start + size]])
                    assert all(r.ack_codes[-1] == "AA" for r in receipts), [r.error for r in receipts]
                    stored = [r.message_id for r in receipts if r.readings]
                    assert evaluations == ([stored] if stored else []), "the batch was not evaluated in one call"
                snapshots.append(snapshot(store))
            finally:
                store.close()
    assert snapshots[0] == snapshots[1]
    assert len(snapshots[0]["alerts"]) > 5
