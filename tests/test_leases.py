"""Job leases: one holder at a time, renewal, takeover after expiry, release, and racing nodes."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Row

from adapters.sql_store import SqlStore
from adapters.sql_tables import job_leases
from engine.leases import Lease

T0 = datetime(2026, 3, 2, 10, 0)
TTL = 60


def lease_row(store: SqlStore, name: str = "outbox_sweep") -> Row | None:
    with store.engine.connect() as conn:
        return conn.execute(select(job_leases).where(job_leases.c.name == name)).first()


def test_the_first_node_takes_the_lease_and_the_second_is_refused_while_it_lasts(store: SqlStore) -> None:
    a, b = Lease(store, "outbox_sweep", "node-a", TTL), Lease(store, "outbox_sweep", "node-b", TTL)
    assert a.try_acquire(T0)
    row = lease_row(store)
    assert (row.holder, row.acquired_at, row.expires_at) == ("node-a", T0, T0 + timedelta(seconds=TTL))
    assert not b.try_acquire(T0 + timedelta(seconds=30))
    assert not b.try_acquire(T0 + timedelta(seconds=TTL))  # expires_at itself is still held
    assert a.current_holder(T0 + timedelta(seconds=TTL)) == "node-a"


def test_the_holder_renews_and_keeps_its_acquired_at(store: SqlStore) -> None:
    a, b = Lease(store, "outbox_sweep", "node-a", TTL), Lease(store, "outbox_sweep", "node-b", TTL)
    assert a.try_acquire(T0)
    assert a.try_acquire(T0 + timedelta(seconds=50))
    row = lease_row(store)
    assert (row.holder, row.acquired_at, row.expires_at) == ("node-a", T0, T0 + timedelta(seconds=50 + TTL))
    assert not b.try_acquire(T0 + timedelta(seconds=90))  # renewed: node-b waits for the new expiry


def test_an_expired_lease_is_taken_over_and_the_old_holder_is_refused(store: SqlStore) -> None:
    a, b = Lease(store, "outbox_sweep", "node-a", TTL), Lease(store, "outbox_sweep", "node-b", TTL)
    assert a.try_acquire(T0)
    later = T0 + timedelta(seconds=TTL + 1)
    assert a.current_holder(later) is None
    assert b.try_acquire(later)
    row = lease_row(store)
    assert (row.holder, row.acquired_at, row.expires_at) == ("node-b", later, later + timedelta(seconds=TTL))
    assert not a.try_acquire(later + timedelta(seconds=1))  # node-a came back: too late


def test_release_frees_the_lease_at_once_and_only_the_holder_can_release(store: SqlStore) -> None:
    a, b = Lease(store, "retention", "node-a", TTL), Lease(store, "retention", "node-b", TTL)
    assert a.try_acquire(T0)
    assert not b.release()
    assert lease_row(store, "retention").holder == "node-a"
    assert a.release()
    assert lease_row(store, "retention") is None
    assert b.try_acquire(T0 + timedelta(seconds=1))
    assert not a.release()


def test_leases_of_different_jobs_are_independent(store: SqlStore) -> None:
    assert Lease(store, "outbox_sweep", "node-a", TTL).try_acquire(T0)
    assert Lease(store, "retention", "node-b", TTL).try_acquire(T0)
    assert not Lease(store, "retention", "node-a", TTL).try_acquire(T0)


def race(store_url: str, name: str, now: datetime, nodes: int = 2) -> list[str]:
    """``nodes`` nodes (each its own store, as separate engines are) try to take ``name`` at the same moment;
    the nodes that got it."""
    stores = [SqlStore.from_url(store_url) for _ in range(nodes)]
    barrier = threading.Barrier(nodes, timeout=30)
    won: list[str] = []
    errors: list[BaseException] = []

    def contend(number: int) -> None:
        try:
            lease = Lease(stores[number], name, f"node-{number}", TTL)
            barrier.wait()
            if lease.try_acquire(now):
                won.append(lease.holder)
        except BaseException as error:  # reported by the test thread
            errors.append(error)

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(nodes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for each in stores:
        each.close()
    assert not errors, errors
    return won


def test_racing_nodes_never_both_win(store: SqlStore, store_url: str) -> None:
    """A missing row (racing INSERTs) and an expired one (racing UPDATEs): exactly one node wins each round."""
    for round_ in range(8):
        name = f"job-{round_}"
        assert len(race(store_url, name, T0)) == 1
        expired = T0 + timedelta(seconds=TTL + 1)
        winners = race(store_url, name, expired, nodes=3)
        assert len(winners) == 1
        assert lease_row(store, name).holder == winners[0]
