"""API settings (keys, whether reads need one), read from the environment by the composition root."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


@dataclass(frozen=True)
class ApiSettings:
    """``api_keys`` empty: authentication is off. Keys never appear in a repr (logs)."""

    api_keys: tuple[str, ...] = field(default=(), repr=False)
    auth_reads: bool = False  # reads need a key too (writes always do when keys are set)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        """VITALS_API_KEYS (comma-separated tokens) and VITALS_API_AUTH_READS (true/false)."""
        env = os.environ if env is None else env
        keys = tuple(key.strip() for key in env.get("VITALS_API_KEYS", "").split(",") if key.strip())
        reads = _flag(env, "VITALS_API_AUTH_READS")
        if reads and not keys:
            raise ValueError("VITALS_API_AUTH_READS=true needs VITALS_API_KEYS: no key is configured")
        return cls(keys, reads)


def _flag(env: Mapping[str, str], name: str) -> bool:
    text = env.get(name, "").strip().lower()
    if text not in _TRUE | _FALSE:
        raise ValueError(f"{name}={text!r} is not a boolean (true or false)")
    return text in _TRUE
