"""Builds the SOAP ASGI app: Spyne applications (vitals over SOAP 1.1 and 1.2, IHE PCD-01 over SOAP 1.2)
behind a2wsgi, the authentication gate (when users are configured) and the body guard."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from a2wsgi import WSGIMiddleware
from spyne import Application
from spyne.protocol.soap import Soap11, Soap12
from spyne.server.wsgi import WsgiApplication

from adapters.soap.guard import BodyGuard, refuse
from adapters.soap.logs import silence_spyne
from adapters.soap.pcd01 import NS as PCD_NS
from adapters.soap.pcd01 import DeviceObservationConsumer, PcdDeps, Soap12Only, SyncDeliver
from adapters.soap.security import Authenticator, AuthGate
from adapters.soap.service import Deps, VitalsService
from adapters.soap.types import NS
from adapters.sql_store import SqlStore
from engine.channel import Channel, Inbound, Receipt, Route, Submission

PATHS = {"/vitals": Soap11, "/vitals12": Soap12}


def build(store: SqlStore, submit: SyncDeliver | None, max_body: int, workers: int,
          pcd01_route: Route | None = None, users: Iterable[tuple[str, str]] = (),
          soap_route: Route | None = None) -> Any:
    silence_spyne()
    deliver = submit or store_alone(store)
    deps = Deps(store, deliver, soap_route or Route(name="soap"))
    spyne_apps = {path: spyne_application(protocol, deps) for path, protocol in PATHS.items()}
    spyne_apps["/pcd01"] = pcd01_application(PcdDeps(deliver, pcd01_route or Route()))
    users = tuple(users)
    authenticator = Authenticator(users) if users else None  # one nonce cache for all three endpoints
    apps = {}
    for path, application in spyne_apps.items():
        app: Any = WSGIMiddleware(WsgiApplication(application), workers=workers)
        if authenticator is not None:
            app = AuthGate(app, authenticator, soap12=path != "/vitals")
        apps[path] = BodyGuard(app, max_body)
    apps["/pcd01"] = Soap12Only(apps["/pcd01"])
    return SoapRouter(apps)


def spyne_application(protocol: type, deps: Deps) -> Application:
    """Validation is ours (transforms/soap_vitals.py and the operations), so faults speak plain words."""
    application = Application([VitalsService], tns=NS, name="VitalsService", in_protocol=protocol(validator=None),
                              out_protocol=protocol())
    application.vitals = deps  # the operations find the store and submit callable through ctx.app
    return application


def pcd01_application(deps: PcdDeps) -> Application:
    """IHE PCD-01 speaks SOAP 1.2 only (adapters/soap/pcd01.py)."""
    application = Application([DeviceObservationConsumer], tns=PCD_NS, name="DeviceObservationConsumer",
                              in_protocol=Soap12(validator=None), out_protocol=Soap12())
    application.pcd01 = deps
    return application


def store_alone(store: SqlStore) -> SyncDeliver:
    """Each submission or HL7 message in a transaction of its own (no group commit)."""
    channel = Channel(store)

    def submit(item: Inbound | Submission) -> Receipt:
        return channel.store_batch([channel.prepare(item)])[0]

    return submit


class SoapRouter:
    """Dispatches /vitals, /vitals12 and /pcd01 (below wherever it is mounted); anything else is a 404."""

    def __init__(self, apps: dict[str, Any]):
        self.apps = apps

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        root = scope.get("root_path", "")
        path = scope["path"][len(root):] if scope["path"].startswith(root) else scope["path"]
        app = self.apps.get(path.rstrip("/"))
        if app is None:
            await refuse(send, 404, "no SOAP endpoint here: use /soap/vitals (SOAP 1.1), /soap/vitals12 (1.2) or "
                                    "/soap/pcd01 (IHE PCD-01, 1.2)")
            return
        await app({**scope, "root_path": root + path.rstrip("/")}, receive, send)
