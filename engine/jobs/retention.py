"""Retention: message content (patient data) emptied after the route's retention age.

Two copies of it go: the raw message (``messages.raw`` set to NULL) and the payload of each outbox row that
was delivered (SENT) or held back (SUPPRESSED): ``payload`` becomes '' and ``payload_pruned_at`` says when.
The rows stay (the audit trail: ids, sender, control id, content hash, status, ACKs; destination, state,
attempts), and readings and alerts are kept. Outbox rows still to send (PENDING, SENDING) or dead letters
(DEAD, which an operator may send again) keep their payload: nothing undelivered is lost.

Each route with ``retention.raw_content_days`` > 0 is pruned up to ``now - days``; routes without settings
(or no longer configured) get ``default_days``. Work goes in batches of ``batch_size`` rows, one short
transaction each (SQLite has one write lock: a pause between batches lets the message writers in). Messages:
a watermark per route in ``job_state`` (the receipt time up to which all is pruned) keeps each run to the
new hour of messages instead of walking the pruned history again. Outbox rows: the partial index
``ix_outbox_payload_kept`` (route, created_at) holds only rows still to be pruned, so each route's oldest are
found at once; the routes in it are walked one index seek each.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, DateTime, TextClause, column, func, select, text, true, update

from adapters.sql_store import SqlStore, utc_naive
from adapters.sql_tables import messages, outbox
from engine.jobs.job_state import read_state, write_state
from engine.routes.housekeeping import DEFAULT_RAW_CONTENT_DAYS

OTHER_ROUTES = "*"  # the watermark of routes without retention settings
BATCH_SIZE = 1_000
MAX_BATCHES = 1_000  # per route and run: a huge backlog is worked off over several runs
PAUSE_SECONDS = 0.02
# Outbox rows whose payload retention will empty some day, read through ix_outbox_payload_kept. Its predicate
# is written out as literals: SQLite uses a partial index only when the query names the same terms. SQLite,
# without statistics, would still prefer ix_outbox_state (every SENT row ever), so there the index is named.
_PAYLOAD_KEPT = text("state IN ('SENT', 'SUPPRESSED') AND payload_pruned_at IS NULL")
_route, _created_at = column("route"), column("created_at", DateTime)  # columns of _outbox_kept (a text FROM)


@dataclass(frozen=True)
class RetentionResult:
    pruned: dict[str, int] = field(default_factory=dict)  # route ("*": the others) -> messages emptied now
    payloads: dict[str, int] = field(default_factory=dict)  # route -> outbox payloads emptied now

    @property
    def noteworthy(self) -> bool:
        return any(self.pruned.values()) or any(self.payloads.values())


def prune_content(store: SqlStore, raw_content_days: Mapping[str, int], now: datetime,
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
    payloads = {}
    for route in _routes_with_payloads_kept(store):
        days = raw_content_days.get(route, default_days)
        if days > 0:
            payloads[route] = _prune_payloads(store, route, moment - timedelta(days=days), moment, batch_size,
                                              max_batches, pause_seconds)
    return RetentionResult(pruned, payloads)


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


def _outbox_kept(dialect: str) -> TextClause:
    return text("outbox INDEXED BY ix_outbox_payload_kept" if dialect == "sqlite" else "outbox")


def _routes_with_payloads_kept(store: SqlStore) -> list[str]:
    """The routes in ix_outbox_payload_kept, one index seek each (a loose index scan)."""
    kept = select(func.min(_route)).select_from(_outbox_kept(store.dialect)).where(_PAYLOAD_KEPT)
    routes: list[str] = []
    with store.engine.connect() as conn:
        while (route := conn.execute(kept.where(_route > (routes[-1] if routes else ""))).scalar()) is not None:
            routes.append(route)
    return routes


def _prune_payloads(store: SqlStore, route: str, cutoff: datetime, moment: datetime, batch_size: int,
                    max_batches: int, pause_seconds: float) -> int:
    oldest = (select(column("id")).select_from(_outbox_kept(store.dialect))
              .where(_PAYLOAD_KEPT, _route == route, _created_at < cutoff).order_by(_created_at).limit(batch_size))
    emptied = 0
    for batch in range(max_batches):
        if batch and pause_seconds:
            time.sleep(pause_seconds)
        with store.transaction() as tx:
            ids = list(tx.conn.execute(oldest).scalars())
            if ids:
                emptied += tx.conn.execute(update(outbox).where(outbox.c.id.in_(ids))
                                           .values(payload="", payload_pruned_at=moment)).rowcount
        if len(ids) < batch_size:
            break
    return emptied
