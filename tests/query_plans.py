"""The plans of the statements a piece of code sends: to check that a query reads through the index meant for
it, on SQLite (EXPLAIN QUERY PLAN) and PostgreSQL (EXPLAIN with sequential scans off, since test tables are
tiny and the planner would otherwise scan them whatever indexes there are)."""
from collections.abc import Callable
from typing import Any

from sqlalchemy import event

from adapters.sql_store import SqlStore


def plans_of(store: SqlStore, run: Callable[[], object], table: str) -> list[tuple[str, str]]:
    """(statement, plan) for each statement ``run`` sent that reads ``table`` (not the writes)."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if f"FROM {table}" in statement and statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    prefix = "EXPLAIN QUERY PLAN " if store.dialect == "sqlite" else "EXPLAIN "
    with store.engine.connect() as conn:
        if store.dialect == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off")
        return [(statement, "\n".join(str(row[-1]) for row in conn.exec_driver_sql(prefix + statement, parameters)))
                for statement, parameters in sent]


def full_scan(plan: str, table: str) -> bool:
    """Does the plan read all of ``table`` (or all of one of its indexes)?"""
    return f"SCAN {table}" in plan or f"Seq Scan on {table}" in plan
