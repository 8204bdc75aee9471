"""Where a job left off: one text value per name in ``job_state`` (a watermark id or time), so each run
reads only what arrived since the last one."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from adapters.sql_store import utc_naive
from adapters.sql_tables import job_state


def read_state(conn: Connection, name: str) -> str | None:
    return conn.execute(select(job_state.c.value).where(job_state.c.name == name)).scalar_one_or_none()


def write_state(conn: Connection, name: str, value: str, now: datetime) -> None:
    """Set ``name`` to ``value`` (one job runs at a time under its lease: update, else insert)."""
    moment = utc_naive(now)
    if not conn.execute(update(job_state).where(job_state.c.name == name)
                        .values(value=value, updated_at=moment)).rowcount:
        conn.execute(insert(job_state).values(name=name, value=value, updated_at=moment))
