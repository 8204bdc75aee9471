"""The engine's HTTP server (FastAPI): health, readiness and the REST API; SOAP and the dashboard join it later."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from adapters import rest
from adapters.rest import health as readiness
from adapters.rest.errors import install_error_handlers
from adapters.rest.settings import ApiSettings
from adapters.sql_store import SqlStore


def create_app(health: Callable[[], dict[str, Any]], store: SqlStore | None = None,
               api: ApiSettings | None = None) -> FastAPI:
    """``health`` reports the engine's state: {"status": "ok" | "degraded", ...}.

    With a ``store`` the REST API (/api/v1) is mounted; ``api`` holds its keys (none: authentication off).
    """
    app = FastAPI(title="VitalsStream", version="0.1.0")
    app.state.store = store
    app.state.api = api or ApiSettings()

    @app.get("/healthz", summary="Liveness: the engine runs and its listeners are up")
    def healthz() -> JSONResponse:
        report = health()
        return JSONResponse(report, status_code=200 if report.get("status") == "ok" else 503)

    app.include_router(readiness.router)
    if store is not None:
        for router in rest.routers():
            app.include_router(router)
    install_error_handlers(app)
    return app
