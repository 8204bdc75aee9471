"""The demo's child processes (the mock EHR, the engine): start with output to a log file, wait until they
answer, tell why one died, stop them with SIGINT.

Children run in their own process group, so a Ctrl-C in the terminal reaches only the orchestrator, which
then stops them in order (traffic, engine, mock EHR) instead of all at once.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import requests

TAIL_LINES = 15


class ChildFailed(Exception):
    """A child did not come up, or died: the text says which and why, with the end of its log."""


class Child:
    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Child:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd, process_group=0)
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def failure(self, what: str) -> ChildFailed:
        """``what`` happened to this child (``"stopped"``, ``"did not answer within 30 s"``), why, and its log."""
        code = self.process.poll() if self.process is not None else None
        why = "" if code is None else f" ({_exit_reason(code)})"
        lines = "\n".join(f"    {line}" for line in self.tail())
        return ChildFailed(f"the {self.name} {what}{why}; last lines of {self.log_path}:\n{lines}")

    def tail(self, lines: int = TAIL_LINES) -> list[str]:
        try:
            with self.log_path.open(encoding="utf-8", errors="replace") as log:
                return [line.rstrip("\n") for line in deque(log, maxlen=lines)]
        except OSError:
            return []

    def wait_ready(self, probe: Callable[[], bool], timeout: float = 30.0) -> None:
        """Until ``probe()`` is true; ChildFailed when the child dies first or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise self.failure("stopped while starting")
            if probe():
                return
            time.sleep(0.1)
        raise self.failure(f"did not answer within {timeout:.0f} s")

    def stop(self, timeout: float = 30.0, forced: threading.Event | None = None) -> int | None:
        """SIGINT (the child's clean shutdown), then wait; SIGKILL after ``timeout`` or when ``forced`` is set.
        Returns the exit code (None when it was never started)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline and not (forced and forced.is_set()):
            time.sleep(0.05)
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait()


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def answers_http(url: str) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            return requests.get(url, timeout=2).status_code == 200
        except requests.RequestException:
            return False
    return probe


def accepts_tcp(host: str, port: int) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            with socket.create_connection((host, port), timeout=2):
                return True
        except OSError:
            return False
    return probe


def port_in_use(host: str, port: int) -> bool:
    """Whether something listens on ``host:port`` already. The probe binds with SO_REUSEADDR, as the servers
    do, so a port an earlier demo left in TIME_WAIT counts as free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


# Switches that would make the demo refuse its own senders, or ask the newcomer to sign in first.
CREDENTIAL_SETTINGS = ("VITALS_API_KEYS", "VITALS_API_AUTH_READS", "VITALS_SOAP_USERS", "VITALS_MOCK_EHR_PASSWORD",
                       "VITALS_DASHBOARD_USERS", "VITALS_DASHBOARD_USERS_FILE")


def child_env(**settings: str) -> dict[str, str]:
    """The orchestrator's environment with ``settings``, without ``CREDENTIAL_SETTINGS``: the demo's endpoints
    are open, on 127.0.0.1 only."""
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_SETTINGS}
    env.update(settings)
    return env
