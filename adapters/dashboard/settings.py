"""Dashboard settings: users, the session secret, the time zone shown, per-route limits; read from the environment.

Sign-in is on when users are configured. Without users the dashboard is open (every visitor acts as admin,
a banner says so), which is allowed only when the HTTP server listens on a loopback address, or when
VITALS_DASHBOARD_ALLOW_OPEN=true says it on purpose (behind a proxy that signs people in): the engine
refuses to start otherwise.

- VITALS_DASHBOARD_USERS: user entries ``name:role:pbkdf2_sha256$...``, separated by commas or newlines;
- VITALS_DASHBOARD_USERS_FILE: a file of such entries, one a line (``#`` starts a comment);
- VITALS_SESSION_SECRET: the key signing session cookies (>= 32 characters); without it one is made per
  process, so a restart signs everyone out, and nodes behind one address need the same one;
- VITALS_DASHBOARD_ALLOW_OPEN: true accepts no users on a non-loopback address;
- VITALS_DASHBOARD_TZ: the IANA time zone times are shown and typed in (default UTC).
"""
from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from adapters.dashboard.health import DEFAULT_ERROR_RATE_LIMIT, DEFAULT_QUEUE_AGE_LIMIT_SECONDS
from adapters.dashboard.passwords import User, parse_users
from engine.routes.housekeeping import DEFAULT_INTERVAL_SECONDS

MIN_SECRET_LENGTH = 32
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


@dataclass(frozen=True)
class DashboardSettings:
    """``users`` empty: sign-in is off (then ``listen_host`` must be loopback unless ``allow_open``).
    ``expected_intervals`` and ``error_rate_limits`` are per route name (the integrations tiles' rules)."""

    users: Mapping[str, User] = field(default_factory=dict, repr=False)
    session_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    listen_host: str = "127.0.0.1"
    allow_open: bool = False
    time_zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    session_hours: float = 12.0  # a shift
    expected_intervals: Mapping[str, int] = field(default_factory=dict)  # route -> seconds; 0: not watched
    error_rate_limits: Mapping[str, float] = field(default_factory=dict)  # route -> fraction refused
    queue_age_limit_seconds: float = DEFAULT_QUEUE_AGE_LIMIT_SECONDS
    refresh_seconds: float = 5.0  # how often live parts of a page are fetched again

    def __post_init__(self) -> None:
        if not self.users and not self.allow_open and not is_loopback_host(self.listen_host):
            raise ValueError(f"the dashboard would be open to everyone on {self.listen_host}: configure "
                             "VITALS_DASHBOARD_USERS (or _FILE), or set VITALS_DASHBOARD_ALLOW_OPEN=true")
        if len(self.session_secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"VITALS_SESSION_SECRET must be at least {MIN_SECRET_LENGTH} characters")

    @property
    def sign_in(self) -> bool:
        return bool(self.users)

    def expected_interval(self, route: str) -> int:
        return self.expected_intervals.get(route, DEFAULT_INTERVAL_SECONDS)

    def error_rate_limit(self, route: str) -> float:
        return self.error_rate_limits.get(route, DEFAULT_ERROR_RATE_LIMIT)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, listen_host: str = "127.0.0.1",
                 expected_intervals: Mapping[str, int] | None = None) -> DashboardSettings:
        env = os.environ if env is None else env
        users = parse_users(env.get("VITALS_DASHBOARD_USERS", ""), "VITALS_DASHBOARD_USERS")
        path = env.get("VITALS_DASHBOARD_USERS_FILE", "").strip()
        if path:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as error:
                raise ValueError(f"VITALS_DASHBOARD_USERS_FILE {path} cannot be read: {error.strerror}") from None
            for name, user in parse_users(text, path).items():
                if name in users:
                    raise ValueError(f"the dashboard user {name!r} is configured twice")
                users[name] = user
        secret = env.get("VITALS_SESSION_SECRET", "")
        return cls(users=users, session_secret=secret.encode() if secret else secrets.token_bytes(32),
                   listen_host=listen_host, allow_open=_flag(env, "VITALS_DASHBOARD_ALLOW_OPEN"),
                   time_zone=_zone(env.get("VITALS_DASHBOARD_TZ", "").strip() or "UTC"),
                   expected_intervals=dict(expected_intervals or {}))


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _flag(env: Mapping[str, str], name: str) -> bool:
    text = env.get(name, "").strip().lower()
    if text not in _TRUE | _FALSE:
        raise ValueError(f"{name}={text!r} is not a boolean (true or false)")
    return text in _TRUE


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"VITALS_DASHBOARD_TZ={name!r} is not an IANA time zone (like Europe/Berlin)") from None
