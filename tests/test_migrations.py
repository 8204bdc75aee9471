"""The numbered sql/ scripts: applied once, in order, matching the Core tables the engine queries."""
from pathlib import Path

import pytest
from sqlalchemy import inspect, select

from adapters.sql_store import SqlStore
from adapters.sql_tables import alert_thresholds, metadata, schema_version
from engine import migrations
from engine.migrations import MigrationError, scripts, statements, upgrade


def test_schema_has_every_column_the_engine_uses(store: SqlStore) -> None:
    inspector = inspect(store.engine)
    for table in metadata.sorted_tables:
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        assert {c.name for c in table.columns} <= columns, table.name


def test_upgrade_twice_applies_nothing_the_second_time(store: SqlStore) -> None:
    assert upgrade(store.engine) == []
    with store.engine.connect() as conn:
        applied = [r.version for r in conn.execute(select(schema_version).order_by(schema_version.c.version))]
        assert applied == [s.version for s in scripts(store.dialect)] and applied[:2] == [1, 2]
        assert len(conn.execute(select(alert_thresholds)).all()) == 9


def test_a_changed_script_is_refused(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SqlStore.from_url(sqlite_url)
    upgrade(store.engine)
    copy = tmp_path / "sql" / "sqlite"
    copy.mkdir(parents=True)
    for script in (migrations.SQL_DIR / "sqlite").glob("*.sql"):
        (copy / script.name).write_text(script.read_text() + ("\n-- edited\n" if script.name.startswith("002") else ""))
    monkeypatch.setattr(migrations, "SQL_DIR", tmp_path / "sql")
    with pytest.raises(MigrationError, match=r"002_default_thresholds\.sql was changed"):
        upgrade(store.engine)
    store.close()


def test_sqlite_statements_are_split_at_complete_statements() -> None:
    script = "-- a comment; with a semicolon\nCREATE TABLE a (x TEXT DEFAULT 'a;b');\nINSERT INTO a VALUES ('c');\n"
    assert statements(script, "sqlite") == ["-- a comment; with a semicolon\nCREATE TABLE a (x TEXT DEFAULT 'a;b');",
                                            "INSERT INTO a VALUES ('c');"]
    with pytest.raises(MigrationError):
        statements("CREATE TABLE b (x TEXT)", "sqlite")


def test_mssql_batches_split_on_go_lines() -> None:
    assert statements("CREATE TABLE a (x INT)\nGO\nSELECT 1\ngo\n", "mssql") == ["CREATE TABLE a (x INT)", "SELECT 1"]


def test_sqlite_evaluation_is_generated_from_the_postgresql_function() -> None:
    from scripts.sqlite_evaluation import POSTGRESQL, SQLITE, sqlite_text

    assert SQLITE.read_text() == sqlite_text(POSTGRESQL.read_text()), \
        "run .venv/bin/python scripts/sqlite_evaluation.py after editing the PostgreSQL function"


def test_store_messages_lists_every_column_of_the_rows_it_inserts() -> None:
    """PostgreSQL's store_messages (014) names the columns of messages and device_readings twice each: in
    its INSERT and in the JSON record it reads. A column added to a table must be added there too."""
    from adapters.sql_store import READING_COLUMNS
    from adapters.sql_tables import messages

    text = (migrations.SQL_DIR / "postgresql" / "014_store_messages_in_one_call.sql").read_text()

    def names(opening: str) -> list[str]:
        """The first word of each item listed after ``opening``, up to its closing parenthesis."""
        listed, depth = text.split(opening, 1)[1], 1
        for end, char in enumerate(listed):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0:
                return [item.split()[0] for item in listed[:end].split(",")]
        raise AssertionError(f"no closing parenthesis after {opening!r}")

    message_columns = [c.name for c in messages.columns if c.name != "id"]
    assert names("INSERT INTO messages (") == message_columns
    assert names("jsonb_to_recordset(p_messages) AS (") == message_columns
    assert names("INSERT INTO device_readings (") == list(READING_COLUMNS)
    assert names("jsonb_to_recordset(p_readings) AS r (") == ["m", *READING_COLUMNS[1:]]
