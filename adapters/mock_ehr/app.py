"""The mock EHR's ASGI app: SOAP at /ehr (Spyne through a2wsgi), GET /received, GET and POST /control.

The SOAP stack is ours (adapters/soap): the body guard (size limit, no DOCTYPE) outside, then the
misbehaviour layer (``control.Misbehave``), then, when a user is configured, a WS-Security UsernameToken
check (``WsseGate``, using adapters/soap/security.py), then Spyne. Import this module through
``server.build_app`` (it patches Spyne's bundled six and silences Spyne's loggers).
"""
from __future__ import annotations

import logging
from typing import Any

from a2wsgi import WSGIMiddleware
from fastapi import FastAPI, Query
from spyne import Application
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication

from adapters.mock_ehr.control import Behaviour, ControlRequest, Misbehave, answer
from adapters.mock_ehr.service import NS, EhrService
from adapters.mock_ehr.state import ReceivedLog
from adapters.soap.guard import BODY_KEY, BodyGuard
from adapters.soap.logs import silence_spyne
from adapters.soap.security import Authenticator, fault

log = logging.getLogger("vitalsstream.mock_ehr")

SOAP_PATH = "/ehr"
WORKERS = 16  # WSGI threads: more than the outbox's senders, so concurrent calls never queue here


class MockEhrApp:
    """ASGI: /ehr to SOAP, everything else to the JSON API. ``close`` releases the WSGI threads."""

    def __init__(self, soap: Any, api: FastAPI, wsgi: WSGIMiddleware):
        self.soap = soap
        self.api = api
        self._wsgi = wsgi

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].rstrip("/") == SOAP_PATH:
            await self.soap(scope, receive, send)
        else:
            await self.api(scope, receive, send)

    def close(self) -> None:
        self._wsgi.executor.shutdown(wait=False)


def build(received: ReceivedLog, behaviour: Behaviour, users: tuple[tuple[str, str], ...] = ()) -> MockEhrApp:
    silence_spyne()
    application = Application([EhrService], tns=NS, name="EhrService", in_protocol=Soap11(validator="soft"),
                              out_protocol=Soap11())
    application.ehr = received  # the operations find the log through ctx.app
    wsgi = WSGIMiddleware(WsgiApplication(application), workers=WORKERS)
    soap: Any = WsseGate(wsgi, Authenticator(users)) if users else wsgi
    return MockEhrApp(BodyGuard(Misbehave(soap, behaviour)), json_api(received, behaviour), wsgi)


def json_api(received: ReceivedLog, behaviour: Behaviour) -> FastAPI:
    api = FastAPI(title="Mock EHR", docs_url=None, redoc_url=None, openapi_url=None)

    @api.get("/received")
    def list_received(kind: str | None = Query(default=None, pattern="^(observations|alert)$"),
                      patient_id: str | None = None) -> list[dict[str, Any]]:
        """Every record, in the order first received; ``calls`` counts how often its key was sent."""
        return received.received(kind, patient_id)

    @api.get("/control")
    def show_control() -> dict[str, Any]:
        return behaviour.current().as_json()

    @api.post("/control")
    def set_control(request: ControlRequest) -> dict[str, Any]:
        return behaviour.set(request.mode, request.delay_seconds, request.times).as_json()

    return api


class WsseGate:
    """ASGI, inside the body guard: a SOAP POST must carry a WS-Security UsernameToken of a configured user.
    Anything else (no token, wrong password, a replayed nonce) is a SOAP Client fault, HTTP 500. HTTP Basic
    does not count here: the EHR contract names WS-Security."""

    def __init__(self, app: Any, authenticator: Authenticator):
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        reason = self.authenticator.check({}, scope.get(BODY_KEY, b""))
        if reason is None:
            await self.app(scope, receive, send)
            return
        log.warning("mock EHR refused a request: %s", reason, extra={"reason": reason})
        await answer(send, 500, *fault(False, True, "authentication failed"))
