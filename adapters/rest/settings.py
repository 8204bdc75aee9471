"""API settings (keys, whether reads need one, SOAP users), read from the environment by the composition root."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


@dataclass(frozen=True)
class ApiSettings:
    """``api_keys`` empty: authentication is off. ``soap_users`` ((name, password) pairs) empty: SOAP
    authentication is off (adapters/soap/security.py). Keys and passwords never appear in a repr (logs)."""

    api_keys: tuple[str, ...] = field(default=(), repr=False)
    auth_reads: bool = False  # reads need a key too (writes always do when keys are set)
    soap_users: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        """VITALS_API_KEYS (comma-separated tokens), VITALS_API_AUTH_READS (true/false) and VITALS_SOAP_USERS
        (comma-separated name:password)."""
        env = os.environ if env is None else env
        keys = tuple(key.strip() for key in env.get("VITALS_API_KEYS", "").split(",") if key.strip())
        reads = _flag(env, "VITALS_API_AUTH_READS")
        if reads and not keys:
            raise ValueError("VITALS_API_AUTH_READS=true needs VITALS_API_KEYS: no key is configured")
        return cls(keys, reads, _users(env.get("VITALS_SOAP_USERS", "")))


def _flag(env: Mapping[str, str], name: str) -> bool:
    text = env.get(name, "").strip().lower()
    if text not in _TRUE | _FALSE:
        raise ValueError(f"{name}={text!r} is not a boolean (true or false)")
    return text in _TRUE


def _users(text: str) -> tuple[tuple[str, str], ...]:
    """``name:password,name2:password2`` (blank entries skipped); a password may hold colons, not commas
    (spaces around names and passwords are dropped).
    Errors name the entry by its position, never quote it (it holds a password)."""
    users: dict[str, str] = {}
    for number, entry in enumerate(text.split(","), start=1):
        if not entry.strip():
            continue
        name, colon, password = (part.strip() for part in entry.partition(":"))
        if not (colon and name and password):
            raise ValueError(f"VITALS_SOAP_USERS entry {number} is not name:password")
        if name in users:
            raise ValueError(f"VITALS_SOAP_USERS names the user {name!r} twice")
        users[name] = password
    return tuple(users.items())
