"""Running the mock EHR: ``serve`` (blocking, for ``vitalsstream mock-ehr``) and ``MockEhr`` (a background
thread for tests, benchmarks and demos, with stop and restart on the same port and its behaviour at hand).

The access log is off: query strings of GET /received can name patients.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import uvicorn

from adapters.mock_ehr.control import Behaviour, Mode, Setting
from adapters.mock_ehr.state import ReceivedLog
from adapters.soap import _modernise_six_importers

log = logging.getLogger("vitalsstream.mock_ehr")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8090
DEFAULT_STATE = Path("var/mock-ehr.jsonl")
GRACEFUL_SECONDS = 2.0  # a stop waits this long at most for requests in flight (a slow mode's sleep)


def build_app(received: ReceivedLog, behaviour: Behaviour, users: tuple[tuple[str, str], ...] = ()) -> Any:
    """The ASGI app (``app.MockEhrApp``); Spyne is imported here, as adapters/soap does it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImportWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        from adapters.mock_ehr.app import build
    _modernise_six_importers()
    return build(received, behaviour, users)


def users_of(username: str | None, password: str | None) -> tuple[tuple[str, str], ...]:
    """No user: requests need no credential; else both name and password."""
    if username is None and password is None:
        return ()
    if not username or password is None:
        raise ValueError("give both a user name and a password for WS-Security, or neither")
    return ((username, password),)


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, state_path: str | Path = DEFAULT_STATE,
          username: str | None = None, password: str | None = None) -> None:
    """Run the mock EHR until interrupted (Ctrl-C). SOAP at http://host:port/ehr, WSDL at /ehr?wsdl."""
    users = users_of(username, password)
    received = ReceivedLog.open(state_path)
    app = build_app(received, Behaviour(), users)
    log.info("mock EHR on http://%s:%d/ehr (state %s, WS-Security %s)", host, port, state_path,
             "required" if users else "off")
    try:
        uvicorn.Server(uvicorn.Config(app, host=host, port=port, lifespan="off", access_log=False,
                                      timeout_graceful_shutdown=GRACEFUL_SECONDS)).run()
    finally:
        app.close()
        received.close()


class MockEhr:
    """The mock EHR on a loopback port in a background thread.

    ``port=0`` takes a free port at the first ``start`` and keeps it for every restart. ``stop`` really stops
    listening (connections are refused); ``start`` again (or ``restart``) serves the same state file.
    """

    def __init__(self, state_path: str | Path, port: int = 0, host: str = DEFAULT_HOST,
                 username: str | None = None, password: str | None = None, durable: bool = True):
        self.state_path = Path(state_path)
        self.host = host
        self.port = port
        self.users = users_of(username, password)
        self.durable = durable
        self.behaviour = Behaviour()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._received: ReceivedLog | None = None
        self._app: Any = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def endpoint(self) -> str:
        """The SOAP endpoint, for EhrSoapSender(endpoint=...)."""
        return f"{self.url}/ehr"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self, timeout: float = 20.0) -> MockEhr:
        if self._server is not None:
            return self
        listener = self._listen()
        try:
            self._received = ReceivedLog.open(self.state_path, self.durable)
            self.behaviour = Behaviour()  # a restarted EHR behaves again
            self._app = build_app(self._received, self.behaviour, self.users)
            self._server = uvicorn.Server(uvicorn.Config(self._app, log_config=None, lifespan="off",
                                                         access_log=False,
                                                         timeout_graceful_shutdown=GRACEFUL_SECONDS))
            self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [listener]},
                                            name=f"mock-ehr-{self.port}", daemon=True)
            self._thread.start()
            deadline = time.monotonic() + timeout
            while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
                time.sleep(0.01)
            if not self._server.started:
                raise RuntimeError(f"the mock EHR did not start on {self.url}")
        except BaseException:
            self.stop()
            listener.close()
            raise
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stops listening, waits for the server thread, closes the state file. Idempotent."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._app is not None:
            self._app.close()
        if self._received is not None:
            self._received.close()
        self._server = self._thread = self._received = self._app = None

    def restart(self) -> MockEhr:
        self.stop()
        return self.start()

    def set_mode(self, mode: Mode, delay_seconds: float = 5.0, times: int | None = None) -> Setting:
        """As POST /control does."""
        return self.behaviour.set(mode, delay_seconds, times)

    def received(self, kind: str | None = None, patient_id: str | None = None) -> list[dict[str, Any]]:
        """As GET /received answers (only while running)."""
        if self._received is None:
            raise RuntimeError("the mock EHR is not running")
        return self._received.received(kind, patient_id)

    def __enter__(self) -> MockEhr:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _listen(self) -> socket.socket:
        """A bound socket (uvicorn listens on it); remembers the port it got."""
        # IPPROTO_TCP named: asyncio sets TCP_NODELAY on accepted connections only then (else each answer
        # waits ~40 ms for the client's delayed ACK).
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self.port))
        except OSError:
            listener.close()
            raise
        self.port = int(listener.getsockname()[1])
        return listener
