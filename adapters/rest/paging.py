"""Keyset paging, newest first: ``limit`` (1-1000, default 100) and an opaque ``cursor``.

A page answers ``{"items": [...], "next_cursor": "..." | null}``; passing ``next_cursor`` back gives the
rows after the last one shown, by (time, id) descending. Unlike an offset, rows arriving meanwhile neither
repeat nor skip a row on the next page.
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Query
from sqlalchemy import ColumnElement, Select, and_, or_
from sqlalchemy.engine import Row

from adapters.rest.invalid import invalid
from adapters.rest.json_rows import row_json

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass(frozen=True)
class Page:
    limit: int
    after: tuple[datetime, int] | None = None


def page_params(limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="rows per page")] = DEFAULT_LIMIT,
                cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the page before")]
                = None) -> Page:
    return Page(limit, decode_cursor(cursor) if cursor else None)


PageParams = Annotated[Page, Depends(page_params)]


def encode_cursor(moment: datetime, row_id: int) -> str:
    return base64.urlsafe_b64encode(f"{moment.isoformat()}|{row_id}".encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[datetime, int]:
    try:
        moment, _, row_id = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode().partition("|")
        return datetime.fromisoformat(moment), int(row_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid(("query", "cursor"), "not a cursor this API handed out", text) from None


def newest_first(statement: Select, moment: ColumnElement, row_id: ColumnElement, page: Page) -> Select:
    """``statement`` ordered by (moment, id) descending, from after the cursor, one row more than a page."""
    if page.after is not None:
        since, last_id = page.after
        statement = statement.where(or_(moment < since, and_(moment == since, row_id < last_id)))
    return statement.order_by(moment.desc(), row_id.desc()).limit(page.limit + 1)


def page_json(rows: list[Row], page: Page, moment_key: str) -> dict[str, Any]:
    shown = rows[:page.limit]
    more = len(rows) > page.limit
    cursor = encode_cursor(shown[-1]._mapping[moment_key], shown[-1].id) if more else None
    return {"items": [row_json(row) for row in shown], "next_cursor": cursor}
