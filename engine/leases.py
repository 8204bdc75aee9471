"""Job leases: a row in ``job_leases`` decides which engine node runs a scheduled job.

Several engine nodes may share one database; each runs the same scheduler, and before every run of a job
it tries to take (or renew) that job's lease. The lease is free when its row is missing or has expired;
the holder renews it on every run, so a node keeps a job until it stops or dies, and another node takes
over ``ttl_seconds`` after the last renewal.

Taking it is one guarded statement: ``UPDATE ... WHERE expires_at < now OR holder = me`` (a racing node's
UPDATE waits for the row lock, then finds it taken), and an INSERT when the row is missing (a racing INSERT
fails on the primary key: the other node won). The nodes' clocks are compared through the times they write,
so they must be kept in sync (NTP); a TTL of a few job intervals absorbs small differences.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from adapters.sql_store import SqlStore, utc_naive
from adapters.sql_tables import job_leases


class Lease:
    """The lease of one job (``name``) as node ``holder`` sees it."""

    def __init__(self, store: SqlStore, name: str, holder: str, ttl_seconds: float):
        if ttl_seconds <= 0:
            raise ValueError("a lease needs a positive ttl_seconds")
        self.store = store
        self.name = name
        self.holder = holder
        self.ttl = timedelta(seconds=ttl_seconds)

    def try_acquire(self, now: datetime) -> bool:
        """Take the lease if it is free, expired or already ours (then renew it); True when we hold it now."""
        moment = utc_naive(now)
        mine = job_leases.c.holder == self.holder
        try:
            with self.store.transaction() as tx:
                taken = tx.conn.execute(
                    update(job_leases)
                    .where(job_leases.c.name == self.name, or_(job_leases.c.expires_at < moment, mine))
                    .values(holder=self.holder, expires_at=moment + self.ttl,
                            acquired_at=_kept_if_mine(mine, moment))).rowcount
                if taken == 1:
                    return True
                if tx.conn.execute(select(job_leases.c.name).where(job_leases.c.name == self.name)).first():
                    return False
                tx.conn.execute(insert(job_leases).values(name=self.name, holder=self.holder, acquired_at=moment,
                                                          expires_at=moment + self.ttl))
                return True
        except IntegrityError:
            return False  # another node inserted the row first: it holds the lease

    def release(self) -> bool:
        """Give the lease up (another node may take it at once); False when we did not hold it."""
        with self.store.transaction() as tx:
            return bool(tx.conn.execute(delete(job_leases).where(
                and_(job_leases.c.name == self.name, job_leases.c.holder == self.holder))).rowcount)

    def current_holder(self, now: datetime) -> str | None:
        """The node holding the lease at ``now``, None when it is free."""
        with self.store.engine.connect() as conn:
            row = conn.execute(select(job_leases.c.holder, job_leases.c.expires_at)
                               .where(job_leases.c.name == self.name)).first()
        return row.holder if row is not None and row.expires_at >= utc_naive(now) else None


def _kept_if_mine(mine: ColumnElement[bool], moment: datetime) -> ColumnElement[datetime]:
    """acquired_at: unchanged on a renewal, ``moment`` on a takeover."""
    return case((mine, job_leases.c.acquired_at), else_=moment)
