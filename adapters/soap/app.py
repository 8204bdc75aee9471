"""Builds the SOAP ASGI app: two Spyne applications (SOAP 1.1 and 1.2) behind a2wsgi and the body guard."""
from __future__ import annotations

from typing import Any

from a2wsgi import WSGIMiddleware
from spyne import Application
from spyne.protocol.soap import Soap11, Soap12
from spyne.server.wsgi import WsgiApplication

from adapters.soap.guard import BodyGuard, refuse
from adapters.soap.logs import silence_spyne
from adapters.soap.service import Deps, SyncSubmit, VitalsService
from adapters.soap.types import NS
from adapters.sql_store import SqlStore
from engine.channel import Channel, Receipt, Submission

PATHS = {"/vitals": Soap11, "/vitals12": Soap12}


def build(store: SqlStore, submit: SyncSubmit | None, max_body: int, workers: int) -> Any:
    silence_spyne()
    deps = Deps(store, submit or store_alone(store))
    apps = {path: BodyGuard(WSGIMiddleware(WsgiApplication(spyne_application(protocol, deps)), workers=workers),
                            max_body) for path, protocol in PATHS.items()}
    return SoapRouter(apps)


def spyne_application(protocol: type, deps: Deps) -> Application:
    """Validation is ours (transforms/soap_vitals.py and the operations), so faults speak plain words."""
    application = Application([VitalsService], tns=NS, name="VitalsService", in_protocol=protocol(validator=None),
                              out_protocol=protocol())
    application.vitals = deps  # the operations find the store and submit callable through ctx.app
    return application


def store_alone(store: SqlStore) -> SyncSubmit:
    """Each submission in a transaction of its own (no group commit)."""
    channel = Channel(store)

    def submit(submission: Submission) -> Receipt:
        return channel.store_batch([channel.prepare(submission)])[0]

    return submit


class SoapRouter:
    """Dispatches /vitals and /vitals12 (below wherever it is mounted); anything else is a 404."""

    def __init__(self, apps: dict[str, Any]):
        self.apps = apps

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        root = scope.get("root_path", "")
        path = scope["path"][len(root):] if scope["path"].startswith(root) else scope["path"]
        app = self.apps.get(path.rstrip("/"))
        if app is None:
            await refuse(send, 404, "no SOAP endpoint here: use /soap/vitals (SOAP 1.1) or /soap/vitals12 (1.2)")
            return
        await app({**scope, "root_path": root + path.rstrip("/")}, receive, send)
