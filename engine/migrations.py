"""Applies the numbered scripts in sql/<dialect>/ in order, once each, recorded in schema_version.

Scripts are plain SQL a DBA can read and run by hand: PostgreSQL and SQLite scripts are sequences of
statements; SQL Server scripts are batches separated by lines reading ``GO``, as sqlcmd and SSMS expect.
An applied script whose text has changed since is an error: fix forward with a new script.
"""
from __future__ import annotations

import hashlib
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, select

from adapters.sql_tables import schema_version
from engine.settings import PROJECT_ROOT

SQL_DIR = PROJECT_ROOT / "sql"
_SCRIPT_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
_GO = re.compile(r"^\s*GO\s*$", re.IGNORECASE | re.MULTILINE)


class MigrationError(Exception):
    pass


@dataclass(frozen=True)
class Script:
    version: int
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def scripts(dialect: str) -> list[Script]:
    folder = SQL_DIR / dialect
    if not folder.is_dir():
        raise MigrationError(f"no SQL scripts for database dialect {dialect!r} in {folder}")
    found = []
    for path in sorted(folder.glob("*.sql")):
        match = _SCRIPT_NAME.match(path.name)
        if match:
            found.append(Script(int(match.group(1)), path))
    return found


def statements(script_text: str, dialect: str) -> list[str]:
    """The statements (SQL Server: batches) of a script, in order."""
    if dialect == "mssql":
        return [batch.strip() for batch in _GO.split(script_text) if batch.strip()]
    if dialect == "postgresql":
        return [script_text]  # psycopg runs a whole script of statements (with $$ bodies) at once
    found, buffer = [], ""
    for line in script_text.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            found.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(line.strip().startswith("--") for line in buffer.strip().splitlines()):
        raise MigrationError("script ends inside a statement (missing semicolon)")
    return found


def pending(engine: Engine) -> list[Script]:
    """Scripts not applied yet (an engine on a server database refuses to start while there are any)."""
    with engine.connect() as conn:
        applied = _applied(conn)
    return [script for script in scripts(engine.dialect.name) if script.version not in applied]


def upgrade(engine: Engine) -> list[int]:
    """Apply every script not yet applied; returns the versions applied now."""
    dialect = engine.dialect.name
    applied_now = []
    with engine.connect() as conn:
        applied = _applied(conn)
    for script in scripts(dialect):
        if script.version in applied:
            if applied[script.version] != script.checksum:
                raise MigrationError(f"{script.path.name} was changed after it was applied; "
                                     "add a new numbered script instead")
            continue
        with engine.begin() as conn:
            driver = conn.connection.driver_connection
            for statement in statements(script.text, dialect):
                _run(driver, statement)
            conn.execute(schema_version.insert().values(
                version=script.version, name=script.path.name, checksum=script.checksum,
                applied_at=datetime.now(UTC).replace(tzinfo=None)))
        applied_now.append(script.version)
    return applied_now


def _applied(conn: Connection) -> dict[int, str]:
    if not inspect(conn).has_table("schema_version"):
        return {}
    return dict(conn.execute(select(schema_version.c.version, schema_version.c.checksum)).all())


def _run(driver_connection: object, statement: str) -> None:
    cursor = driver_connection.cursor()  # type: ignore[attr-defined]
    try:
        cursor.execute(statement)
    finally:
        cursor.close()
