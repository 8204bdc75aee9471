"""The statistics page's queries read the alerts of their range through an index, never the whole table."""
from datetime import datetime, timedelta

from adapters.dashboard.stats_queries import statistics
from adapters.sql_store import SqlStore
from tests.query_plans import full_scan, plans_of


def test_every_alerts_query_of_the_statistics_uses_the_first_seen_index(store: SqlStore) -> None:
    until = datetime(2026, 11, 21, 12, 0)

    def run() -> None:
        with store.engine.connect() as conn:
            statistics(conn, store.dialect, until - timedelta(days=1), until)

    plans = plans_of(store, run, "alerts")
    assert len(plans) == 5  # counts of both periods, time to acknowledge, top patients, top devices
    for statement, plan in plans:
        assert "ix_alerts_first_seen" in plan and not full_scan(plan, "alerts"), (statement, plan)
