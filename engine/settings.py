"""Settings from environment variables, with defaults that run the engine on an embedded SQLite file."""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    db_url: str = "sqlite:///var/vitalsstream.db"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    mllp_port: int = 2575
    routes_dir: Path = PROJECT_ROOT / "routes"
    # This engine among several on one database (outbox claims, job leases).
    node_name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        defaults = cls()
        return cls(
            db_url=env.get("VITALS_DB_URL") or defaults.db_url,
            http_host=env.get("VITALS_HTTP_HOST") or defaults.http_host,
            http_port=_port(env, "VITALS_HTTP_PORT", defaults.http_port),
            mllp_port=_port(env, "VITALS_MLLP_PORT", defaults.mllp_port),
            routes_dir=Path(env.get("VITALS_ROUTES") or defaults.routes_dir),
            node_name=env.get("VITALS_NODE_NAME") or defaults.node_name,
        )


def _port(env: dict[str, str], name: str, default: int) -> int:
    text = env.get(name)
    if not text:
        return default
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{name}={text!r} is not a TCP port (1-65535)")
    return int(text)
