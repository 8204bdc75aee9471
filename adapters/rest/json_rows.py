"""Rows as JSON: times in ISO 8601 UTC with ``Z`` (stored times are UTC without zone)."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Row


def iso(moment: datetime) -> str:
    """``2024-01-01T10:00:00Z``, with microseconds only when there are any."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace(".000000Z", "Z")


def row_json(row: Row) -> dict[str, Any]:
    return {key: iso(value) if isinstance(value, datetime) else value for key, value in row._mapping.items()}


def now() -> datetime:
    """The stored form of the current time: UTC without zone."""
    return datetime.now(UTC).replace(tzinfo=None)
