"""A private PostgreSQL server for the tests (initdb + pg_ctl), unless VITALS_TEST_POSTGRES_URL names one.

In CI (CI=true) a test that needs a server and cannot get one fails instead of skipping.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def unavailable(reason: str) -> None:
    """Skip locally; fail in CI, where a skipped server test would hide a broken install."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"server test cannot run in CI: {reason}")
    pytest.skip(reason)


def _bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def private_postgres() -> Iterator[str]:
    """Start a throw-away PostgreSQL on a free loopback port; yields its SQLAlchemy URL."""
    bindir = _bindir()
    if bindir is None:
        unavailable("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    root = Path(tempfile.mkdtemp(prefix="vitals-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()
    try:
        subprocess.run(as_user + [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                                  "-E", "UTF8", "--no-sync"], check=True, capture_output=True)
        subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w",
                                  "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off",
                                  "start"], check=True, capture_output=True)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
