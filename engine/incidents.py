"""Incidents: operational problems (a destination down, dead letters, a device offline, a reconciliation
mismatch), kept apart from clinical alerts in the ``incidents`` table.

Lifecycle: open -> acknowledged -> resolved, recording who and when. The housekeeping jobs raise an
incident when a check finds a problem (a repeat finding of an open or acknowledged one bumps its
``last_seen_at`` and ``occurrences`` and refreshes summary and details) and clear it (resolved by
``system``) when a later check finds it fixed. A partial unique index keeps one not-resolved incident per
kind and subject. Operators acknowledge and resolve by id (``change_incident_state``): like alerts, the
UPDATE is guarded by the states it may start from, so of two callers racing one is refused.

``raise_incident`` and ``clear_incident`` run inside the caller's transaction (a job's short transaction);
summaries and details carry ids, names and counts, never patient data.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from adapters.sql_store import SqlStore, utc_naive
from adapters.sql_tables import incidents
from engine.operator_actions import ActionRefused

KINDS = ("device_offline", "destination_down", "dead_letters", "reconciliation_mismatch")
SEVERITIES = ("warning", "critical")
SYSTEM = "system"  # who resolves an incident that a check found fixed
SUMMARY_LENGTH = 400

# action -> (states it may start from, the state it leaves, the column prefix recording who and when)
ACTIONS = {"acknowledge": (("open",), "acknowledged", "acknowledged"),
           "resolve": (("open", "acknowledged"), "resolved", "resolved")}

_ACTIVE = incidents.c.state != "resolved"


def raise_incident(conn: Connection, kind: str, key: str, severity: str, summary: str,
                   details: Mapping[str, Any] | None, now: datetime) -> bool:
    """Open an incident about ``key``, or bump the one still open or acknowledged; True when opened."""
    if kind not in KINDS or severity not in SEVERITIES:
        raise ValueError(f"unknown incident kind or severity: {kind!r}, {severity!r}")
    moment = utc_naive(now)
    fresh = {"severity": severity, "summary": summary[:SUMMARY_LENGTH],
             "details": json.dumps(details, sort_keys=True, default=_json_value) if details is not None else None}
    for _ in range(2):
        if _bump(conn, kind, key, fresh, moment):
            return False
        try:
            with conn.begin_nested():  # a racing raise of the same key fails only this savepoint
                conn.execute(insert(incidents).values(kind=kind, subject=key, state="open", opened_at=moment,
                                                      last_seen_at=moment, occurrences=1, **fresh))
            return True
        except IntegrityError:
            continue  # raised by someone else meanwhile: bump theirs
    raise RuntimeError(f"incident {kind} could neither be opened nor updated")


def _bump(conn: Connection, kind: str, key: str, fresh: dict[str, Any], moment: datetime) -> bool:
    return bool(conn.execute(
        update(incidents).where(incidents.c.kind == kind, incidents.c.subject == key, _ACTIVE)
        .values(last_seen_at=moment, occurrences=incidents.c.occurrences + 1, **fresh)).rowcount)


def clear_incident(conn: Connection, kind: str, key: str, now: datetime) -> bool:
    """Resolve the open or acknowledged incident about ``key`` as fixed (by ``system``); False when none."""
    return bool(conn.execute(
        update(incidents).where(incidents.c.kind == kind, incidents.c.subject == key, _ACTIVE)
        .values(state="resolved", resolved_at=utc_naive(now), resolved_by=SYSTEM)).rowcount)


def active_keys(conn: Connection, kind: str) -> set[str]:
    """The subjects of the open or acknowledged incidents of ``kind`` (what a check may have to clear)."""
    return set(conn.execute(select(incidents.c.subject).where(incidents.c.kind == kind, _ACTIVE)).scalars())


def change_incident_state(store: SqlStore, incident_id: int, action: str, by: str,
                          now: datetime | None = None) -> Row:
    """Acknowledge or resolve one incident, recording who and when; the incident as it is now.

    Raises ActionRefused (``missing`` for an unknown id) when its state does not allow the action.
    """
    starts, leaves, prefix = ACTIONS[action]
    moment = utc_naive(now) if now is not None else _now()
    with store.transaction() as tx:
        changed = tx.conn.execute(
            update(incidents).where(incidents.c.id == incident_id, incidents.c.state.in_(starts))
            .values({"state": leaves, f"{prefix}_at": moment, f"{prefix}_by": by})).rowcount
        row = tx.conn.execute(select(incidents).where(incidents.c.id == incident_id)).first()
    if row is None:
        raise ActionRefused(f"there is no incident {incident_id}", missing=True)
    if changed != 1:
        already = "already " if row.state == leaves else ""
        raise ActionRefused(f"incident {incident_id} is {already}{row.state}: it cannot be {leaves} now")
    return row


def _json_value(value: object) -> str:
    """Times in details as ISO 8601 UTC with Z (stored times are UTC without zone)."""
    if isinstance(value, datetime):
        return utc_naive(value).isoformat(timespec="microseconds").removesuffix(".000000") + "Z"
    return str(value)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
