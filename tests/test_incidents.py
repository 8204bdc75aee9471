"""Incidents: raised once per kind and subject, bumped while active, cleared by the system, acknowledged and
resolved by operators with who and when; wrong transitions refused in plain words."""
from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from adapters.sql_store import SqlStore
from adapters.sql_tables import incidents
from engine.incidents import active_keys, change_incident_state, clear_incident, raise_incident
from engine.operator_actions import ActionRefused

T0 = datetime(2026, 3, 2, 10, 0)


def all_incidents(store: SqlStore) -> list[Row]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(incidents).order_by(incidents.c.id)))


def raise_down(store: SqlStore, now: datetime, failing: int = 3, key: str = "ehr") -> bool:
    with store.transaction() as tx:
        return raise_incident(tx.conn, "destination_down", key, "critical", f"destination {key}: {failing} failing",
                              {"failing_records": failing, "oldest_created_at": T0}, now)


def test_a_problem_opens_one_incident_and_repeats_bump_it(store: SqlStore) -> None:
    assert raise_down(store, T0)
    assert not raise_down(store, T0 + timedelta(seconds=15), failing=5)
    [row] = all_incidents(store)
    assert (row.kind, row.subject, row.state, row.severity) == ("destination_down", "ehr", "open", "critical")
    assert (row.opened_at, row.last_seen_at, row.occurrences) == (T0, T0 + timedelta(seconds=15), 2)
    assert row.summary == "destination ehr: 5 failing"  # the latest finding
    assert json.loads(row.details) == {"failing_records": 5, "oldest_created_at": "2026-03-02T10:00:00Z"}
    assert row.acknowledged_at is None and row.resolved_at is None


def test_clearing_resolves_it_as_system_and_a_new_finding_opens_a_new_one(store: SqlStore) -> None:
    raise_down(store, T0)
    with store.transaction() as tx:
        assert clear_incident(tx.conn, "destination_down", "ehr", T0 + timedelta(minutes=1))
        assert not clear_incident(tx.conn, "destination_down", "ehr", T0 + timedelta(minutes=1))
        assert not clear_incident(tx.conn, "dead_letters", "ehr", T0)  # another kind: nothing to clear
    assert raise_down(store, T0 + timedelta(minutes=2))
    first, second = all_incidents(store)
    assert (first.state, first.resolved_by, first.resolved_at) == ("resolved", "system", T0 + timedelta(minutes=1))
    assert (second.state, second.opened_at, second.occurrences) == ("open", T0 + timedelta(minutes=2), 1)


def test_subjects_are_separate_incidents(store: SqlStore) -> None:
    raise_down(store, T0, key="ehr")
    raise_down(store, T0, key="pager")
    with store.engine.connect() as conn:
        assert active_keys(conn, "destination_down") == {"ehr", "pager"}
        assert active_keys(conn, "dead_letters") == set()


def test_an_acknowledged_incident_is_bumped_and_cleared_like_an_open_one(store: SqlStore) -> None:
    raise_down(store, T0)
    [row] = all_incidents(store)
    acknowledged = change_incident_state(store, row.id, "acknowledge", "ops.kim", T0 + timedelta(minutes=1))
    assert (acknowledged.state, acknowledged.acknowledged_by) == ("acknowledged", "ops.kim")
    assert acknowledged.acknowledged_at == T0 + timedelta(minutes=1)
    assert not raise_down(store, T0 + timedelta(minutes=2))
    [row] = all_incidents(store)
    assert (row.state, row.occurrences) == ("acknowledged", 2)
    with store.transaction() as tx:
        assert clear_incident(tx.conn, "destination_down", "ehr", T0 + timedelta(minutes=3))
    [row] = all_incidents(store)
    assert (row.state, row.acknowledged_by, row.resolved_by) == ("resolved", "ops.kim", "system")


def test_operators_resolve_and_wrong_transitions_are_refused(store: SqlStore) -> None:
    raise_down(store, T0)
    [row] = all_incidents(store)
    resolved = change_incident_state(store, row.id, "resolve", "ops.lee", T0 + timedelta(minutes=5))
    assert (resolved.state, resolved.resolved_by, resolved.resolved_at) == ("resolved", "ops.lee",
                                                                            T0 + timedelta(minutes=5))
    assert resolved.acknowledged_at is None  # resolving needs no acknowledgement first
    with pytest.raises(ActionRefused, match=rf"^incident {row.id} is already resolved: it cannot be resolved now$"):
        change_incident_state(store, row.id, "resolve", "ops.kim")
    with pytest.raises(ActionRefused, match=rf"^incident {row.id} is resolved: it cannot be acknowledged now$"):
        change_incident_state(store, row.id, "acknowledge", "ops.kim")
    with pytest.raises(ActionRefused, match=r"^there is no incident 424242$") as missing:
        change_incident_state(store, 424242, "acknowledge", "ops.kim")
    assert missing.value.missing
    assert all_incidents(store)[0].resolved_by == "ops.lee"  # the first one stays


def test_acknowledging_twice_is_refused(store: SqlStore) -> None:
    raise_down(store, T0)
    [row] = all_incidents(store)
    change_incident_state(store, row.id, "acknowledge", "ops.kim")
    with pytest.raises(ActionRefused, match="is already acknowledged: it cannot be acknowledged now"):
        change_incident_state(store, row.id, "acknowledge", "ops.lee")


def test_the_database_keeps_one_active_incident_per_kind_and_subject(store: SqlStore) -> None:
    raise_down(store, T0)
    row = {"kind": "destination_down", "subject": "ehr", "state": "acknowledged", "severity": "critical",
           "summary": "copy", "opened_at": T0, "last_seen_at": T0, "occurrences": 1}
    with pytest.raises(IntegrityError), store.transaction() as tx:
        tx.conn.execute(insert(incidents).values(row))
    with store.transaction() as tx:  # a resolved one may sit beside it
        tx.conn.execute(insert(incidents).values({**row, "state": "resolved"}))
    assert len(all_incidents(store)) == 2


def test_unknown_kinds_and_severities_are_refused(store: SqlStore) -> None:
    with pytest.raises(ValueError, match="unknown incident kind"), store.transaction() as tx:
        raise_incident(tx.conn, "ehr_slow", "ehr", "warning", "slow", None, T0)
    with pytest.raises(ValueError, match="unknown incident kind or severity"), store.transaction() as tx:
        raise_incident(tx.conn, "dead_letters", "ehr", "info", "x", None, T0)


def test_long_summaries_are_cut_to_the_column(store: SqlStore) -> None:
    with store.transaction() as tx:
        raise_incident(tx.conn, "device_offline", "MON-1", "warning", "x" * 500, None, T0)
    [row] = all_incidents(store)
    assert len(row.summary) == 400 and row.details is None


def at_once(actions: list[Callable[[], object]]) -> None:
    """Run each action in its own thread, released together; re-raises the first failure."""
    barrier = threading.Barrier(len(actions), timeout=30)
    errors: list[BaseException] = []

    def run(action: Callable[[], object]) -> None:
        try:
            barrier.wait()
            action()
        except BaseException as error:  # reported by the test thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(action,)) for action in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    if errors:
        raise errors[0]


def test_nodes_raising_the_same_problem_at_once_share_one_incident(store: SqlStore, store_url: str) -> None:
    """Racing first raises: one INSERT wins, the others fall back to bumping it (a savepoint keeps their
    transactions usable)."""
    nodes = [SqlStore.from_url(store_url) for _ in range(3)]

    def raiser(node: SqlStore, key: str) -> Callable[[], object]:
        def raise_it() -> None:
            with node.transaction() as tx:
                raise_incident(tx.conn, "device_offline", key, "warning", "silent", None, T0)
        return raise_it

    try:
        for round_ in range(5):
            key = f"MON-{round_}"
            at_once([raiser(node, key) for node in nodes])
            [row] = [r for r in all_incidents(store) if r.subject == key]
            assert (row.state, row.occurrences) == ("open", 3)
    finally:
        for node in nodes:
            node.close()
