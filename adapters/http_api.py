"""The engine's HTTP server (FastAPI): health now; the REST API, SOAP and the dashboard join it later."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse


def create_app(health: Callable[[], dict[str, Any]]) -> FastAPI:
    """``health`` reports the engine's state: {"status": "ok" | "degraded", ...}."""
    app = FastAPI(title="VitalsStream", version="0.1.0")

    @app.get("/healthz", summary="Liveness: the engine runs and its listeners are up")
    def healthz() -> JSONResponse:
        report = health()
        return JSONResponse(report, status_code=200 if report.get("status") == "ok" else 503)

    return app
