"""Retention: raw message content (``messages.raw``, patient data) emptied after the route's retention age.

Only the raw content goes: the message row stays (the audit trail: ids, sender, control id, content hash,
status, ACKs), and readings, alerts, outbox rows and their attempts are kept. Each route with
``retention.raw_content_days`` > 0 is pruned up to ``now - days``; routes without settings (or no longer
configured) get ``default_days``. Work goes in batches of ``batch_size`` messages, one short transaction
each (SQLite has one write lock: a pause between batches lets the message writers in). A watermark per
route in ``job_state`` (the receipt time up to which all is pruned) keeps each run to the new hour of
messages instead of walking the pruned history again.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, select, true, update

from adapters.sql_store import SqlStore, utc_naive
from adapters.sql_tables import messages
from engine.jobs.job_state import read_state, write_state
from engine.routes.housekeeping import DEFAULT_RAW_CONTENT_DAYS

OTHER_ROUTES = "*"  # the watermark of routes without retention settings
BATCH_SIZE = 1_000
MAX_BATCHES = 1_000  # per route and run: a huge backlog is worked off over several runs
PAUSE_SECONDS = 0.02


@dataclass(frozen=True)
class RetentionResult:
    pruned: dict[str, int] = field(default_factory=dict)  # route ("*": the others) -> messages emptied now

    @property
    def noteworthy(self) -> bool:
        return any(self.pruned.values())


def prune_raw_content(store: SqlStore, raw_content_days: Mapping[str, int], now: datetime,
                      default_days: int = DEFAULT_RAW_CONTENT_DAYS, batch_size: int = BATCH_SIZE,
                      max_batches: int = MAX_BATCHES, pause_seconds: float = PAUSE_SECONDS) -> RetentionResult:
    """``raw_content_days``: route name -> days (0 keeps forever)."""
    moment = utc_naive(now)
    configured = sorted(raw_content_days)
    buckets: list[tuple[str, int, ColumnElement[bool]]] = [
        (route, raw_content_days[route], messages.c.route == route) for route in configured]
    buckets.append((OTHER_ROUTES, default_days, messages.c.route.not_in(configured) if configured else true()))
    pruned = {}
    for name, days, of_route in buckets:
        if days > 0:
            pruned[name] = _prune(store, name, of_route, moment - timedelta(days=days), moment,
                                  batch_size, max_batches, pause_seconds)
    return RetentionResult(pruned)


def _prune(store: SqlStore, name: str, of_route: ColumnElement[bool], cutoff: datetime, moment: datetime,
           batch_size: int, max_batches: int, pause_seconds: float) -> int:
    watermark = f"retention.{name}"
    with store.engine.connect() as conn:
        state = read_state(conn, watermark)
    since = datetime.fromisoformat(state) if state is not None else None
    if since is not None and since >= cutoff:
        return 0
    emptied = 0
    for batch in range(max_batches):
        if batch and pause_seconds:
            time.sleep(pause_seconds)
        with store.transaction() as tx:
            found = select(messages.c.id, messages.c.received_at).where(
                of_route, messages.c.received_at < cutoff, messages.c.raw.is_not(None))
            if since is not None:
                found = found.where(messages.c.received_at >= since)
            rows = tx.conn.execute(found.order_by(messages.c.received_at, messages.c.id).limit(batch_size)).all()
            if rows:
                emptied += tx.conn.execute(update(messages).where(messages.c.id.in_([r.id for r in rows]))
                                           .values(raw=None)).rowcount
            done = len(rows) < batch_size
            since = cutoff if done else rows[-1].received_at
            write_state(tx.conn, watermark, since.isoformat(sep=" "), moment)
        if done:
            break
    return emptied
