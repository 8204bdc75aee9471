"""How the mock EHR misbehaves on request (tests and demos), and the ASGI layer that acts on it.

Modes, applied to SOAP requests (POST /ehr) only; the WSDL, /received and /control always answer:

- ``ok``: normal service;
- ``server_fault``: a SOAP 1.1 Server fault, HTTP 500 (nothing recorded);
- ``client_fault``: a SOAP 1.1 Client fault, HTTP 500 (nothing recorded);
- ``slow``: waits ``delay_seconds``, then serves the request as usual, even when the client has given up by
  then (like a slow EHR, it may record a request whose answer nobody reads: the resend gets Duplicate);
- ``down``: HTTP 503 with a plain-text body, no SOAP envelope (nothing recorded).

With ``times`` the mode applies to that many SOAP requests, then the service is ``ok`` again.
"""
from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from adapters.soap.guard import refuse
from adapters.soap.security import fault

Mode = Literal["ok", "server_fault", "client_fault", "slow", "down"]
SERVER_FAULT_TEXT = "the EHR could not process the request (mock server fault)"
CLIENT_FAULT_TEXT = "the EHR rejected the request (mock client fault)"


class ControlRequest(BaseModel):
    """The body of POST /control."""

    model_config = ConfigDict(extra="forbid")

    mode: Mode
    delay_seconds: float = Field(default=5.0, ge=0, le=600, description="how long slow waits")
    times: int | None = Field(default=None, ge=1, description="that many SOAP requests, then ok again")


@dataclass(frozen=True)
class Setting:
    mode: Mode = "ok"
    delay_seconds: float = 5.0
    times_left: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "delay_seconds": self.delay_seconds, "times_left": self.times_left}


class Behaviour:
    """The current mode; thread-safe (tests set it from their thread, requests take it on the event loop)."""

    def __init__(self) -> None:
        self._setting = Setting()
        self._lock = threading.Lock()

    def set(self, mode: Mode, delay_seconds: float = 5.0, times: int | None = None) -> Setting:
        with self._lock:
            self._setting = Setting(mode, delay_seconds, times if mode != "ok" else None)
            return self._setting

    def current(self) -> Setting:
        with self._lock:
            return self._setting

    def take(self) -> Setting:
        """The setting for one SOAP request; counts it against ``times``."""
        with self._lock:
            taken = self._setting
            if taken.times_left is not None:
                left = taken.times_left - 1
                self._setting = Setting(taken.mode, taken.delay_seconds, left) if left > 0 else Setting()
            return taken


class Misbehave:
    """ASGI, in front of the SOAP app: acts on the behaviour for each POST."""

    def __init__(self, app: Any, behaviour: Behaviour):
        self.app = app
        self.behaviour = behaviour

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        setting = self.behaviour.take()
        if setting.mode == "down":
            await refuse(send, 503, "the EHR is down (mock)")
        elif setting.mode in ("server_fault", "client_fault"):
            client = setting.mode == "client_fault"
            content_type, envelope = fault(False, client, CLIENT_FAULT_TEXT if client else SERVER_FAULT_TEXT)
            await answer(send, 500, content_type, envelope)
        else:
            if setting.mode == "slow":
                await asyncio.sleep(setting.delay_seconds)
            await self.app(scope, receive, send)


async def answer(send: Any, status: int, content_type: bytes, payload: bytes) -> None:
    """A complete response; harmless when the client is already gone."""
    try:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", content_type), (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})
    except OSError:
        pass
