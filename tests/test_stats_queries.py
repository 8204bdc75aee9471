"""The statistics page's queries read the alerts of their range through an index, never the whole table."""
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event

from adapters.dashboard.stats_queries import statistics
from adapters.sql_store import SqlStore


def test_every_alerts_query_of_the_statistics_uses_the_first_seen_index(store: SqlStore) -> None:
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        sent.append((statement, parameters))

    until = datetime(2026, 11, 21, 12, 0)
    event.listen(store.engine, "before_cursor_execute", record)
    try:
        with store.engine.connect() as conn:
            statistics(conn, store.dialect, until - timedelta(days=1), until)
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    of_alerts = [(statement, parameters) for statement, parameters in sent if "FROM alerts" in statement]
    assert len(of_alerts) == 5  # counts of both periods, time to acknowledge, top patients, top devices

    with store.engine.connect() as conn:
        if store.dialect == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off")  # an empty table: the planner would scan it anyway
        for statement, parameters in of_alerts:
            prefix = "EXPLAIN QUERY PLAN " if store.dialect == "sqlite" else "EXPLAIN "
            plan = "\n".join(str(row[-1]) for row in conn.exec_driver_sql(prefix + statement, parameters))
            assert "ix_alerts_first_seen" in plan, (statement, plan)
            assert "SCAN alerts" not in plan and "Seq Scan on alerts" not in plan, (statement, plan)
