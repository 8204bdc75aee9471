"""Reading what the browser sent: url-encoded POST bodies (parsed here: python-multipart is not a dependency),
query filters that fall back to "no filter" instead of an error page, times typed in the dashboard's zone,
and the local path a form may send the visitor back to.
"""
from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from fastapi import Request

from adapters.sql_store import utc_naive

MAX_FORM_BYTES = 16 * 1024
MAX_TEXT = 200


class FormRefused(Exception):
    """A POST body that is not a small url-encoded form."""


async def read_form(request: Request) -> dict[str, str]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise FormRefused("forms are sent url-encoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormRefused("the form is too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise FormRefused("the form is not url-encoded UTF-8") from None
    return {name: value.strip() for name, value in pairs}


def text(request: Request, name: str, limit: int = MAX_TEXT) -> str | None:
    """A non-empty query value of at most ``limit`` characters, else None."""
    value = request.query_params.get(name, "").strip()
    return value if value and len(value) <= limit else None


def choice(request: Request, name: str, allowed: Collection[str]) -> str | None:
    value = request.query_params.get(name, "")
    return value if value in allowed else None


def whole(request: Request, name: str, default: int, low: int, high: int) -> int:
    value = request.query_params.get(name, "")
    return min(max(int(value), low), high) if value.isdigit() else default


def local_time(request: Request, name: str, zone: ZoneInfo) -> datetime | None:
    """A ``datetime-local`` value (``2024-01-01T10:00``) read in the dashboard's zone, as stored: UTC, naive."""
    value = request.query_params.get(name, "").strip()
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return utc_naive(moment if moment.tzinfo else moment.replace(tzinfo=zone))


def input_value(moment: datetime | None, zone: ZoneInfo) -> str:
    """A stored time as a ``datetime-local`` input shows it, in the dashboard's zone."""
    if moment is None:
        return ""
    return moment.replace(tzinfo=UTC).astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def time_range(request: Request, zone: ZoneInfo, now: datetime, default: timedelta) -> tuple[datetime, datetime]:
    """``from``/``to`` of the query (to defaults to now, from to ``default`` before it), to after from."""
    until = local_time(request, "to", zone) or now
    since = local_time(request, "from", zone) or until - default
    if since >= until:
        since = until - default
    return since, until


def local_path(value: str, fallback: str) -> str:
    """Where to go after a form: a path on this server (never another host), else ``fallback``."""
    if value.startswith("/") and not value.startswith("//") and "\\" not in value and len(value) < 2000:
        return value
    return fallback


def query(**params: object) -> str:
    """``?a=1&b=x`` of the given values, leaving out None and empty ones."""
    kept = {name: str(value) for name, value in params.items() if value not in (None, "")}
    return f"?{urlencode(kept)}" if kept else ""
