"""The engine's HTTP server (FastAPI): health, readiness, the REST API and SOAP (Spyne, mounted at /soap)."""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from adapters import rest
from adapters.dashboard.app import mount_dashboard
from adapters.dashboard.settings import DashboardSettings
from adapters.rest import health as readiness
from adapters.rest.errors import install_error_handlers
from adapters.rest.settings import ApiSettings
from adapters.soap import soap_app
from adapters.sql_store import SqlStore
from engine.channel import Channel, Inbound, Receipt, Route, Submission

Submit = Callable[[Submission | Inbound], Awaitable[Receipt]]


def create_app(health: Callable[[], dict[str, Any]], store: SqlStore | None = None,
               api: ApiSettings | None = None, submit: Submit | None = None,
               routes: Mapping[str, Route] | None = None,
               blocking_submit: Callable[[Submission | Inbound], Receipt] | None = None,
               pcd01_route: Route | None = None, rest_route: Route | None = None,
               soap_route: Route | None = None,
               destinations: Sequence[Mapping[str, str]] | None = None,
               dashboard: DashboardSettings | None = None) -> FastAPI:
    """``health`` reports the engine's state: {"status": "ok" | "degraded", ...}.

    With a ``store`` the REST API (/api/v1) is mounted; ``api`` holds its keys (none: authentication off);
    ``submit`` stores a submission through the channel (the engine passes its group committer; without
    one, each submission is stored in a transaction of its own); ``blocking_submit`` is the same for the SOAP
endpoints, which run in worker threads; ``pcd01_route`` is the MLLP route whose HL7 path PCD-01 over
SOAP takes; ``rest_route`` and ``soap_route`` the routes REST and SOAP submissions take (default: routes
named rest and soap); ``routes`` are the configured routes by name
    (/api/v1/channels lists them before their first message); ``destinations`` the configured outbox
    destinations ({"name", "kind", "route"}: /api/v1/destinations lists them before their first row);
    ``dashboard`` the dashboard's settings (users, sessions; default: sign-in off, loopback only).
    """
    app = FastAPI(title="VitalsStream", version="0.1.0")
    app.state.store = store
    app.state.health = health
    app.state.api = api or ApiSettings()
    app.state.routes = dict(routes or {})
    app.state.destinations = [dict(item) for item in destinations or ()]
    app.state.rest_route = rest_route or Route(name="rest")
    app.state.submit = submit or (_store_alone(store) if store is not None else None)

    @app.get("/healthz", summary="Liveness: the engine runs and its listeners are up")
    def healthz() -> JSONResponse:
        report = health()
        return JSONResponse(report, status_code=200 if report.get("status") == "ok" else 503)

    app.include_router(readiness.router)
    if store is not None:
        for router in rest.routers():
            app.include_router(router)
        mount_dashboard(app, dashboard)
        app.mount("/soap", soap_app(store, submit=blocking_submit, users=app.state.api.soap_users,
                                        pcd01_route=pcd01_route, soap_route=soap_route))
    install_error_handlers(app)
    return app


def _store_alone(store: SqlStore) -> Submit:
    channel = Channel(store)

    async def submit(submission: Submission) -> Receipt:
        return (await run_in_threadpool(channel.store_batch, [channel.prepare(submission)]))[0]

    return submit
