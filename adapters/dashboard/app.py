"""``mount_dashboard(app, settings)``: the dashboard's pages, its two static files and its error pages on the
engine's FastAPI app (create_app calls it when a store is configured).

Pages are HTML built on the server from the engine's tables (REST queries reused); the only script is
static/dashboard.js (live refresh, confirm dialogs), the only style static/dashboard.css.
"""
from __future__ import annotations

import functools
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response

from adapters.dashboard import alert_detail, alerts, integrations, messages, operations, signin, stats
from adapters.dashboard.auth import PageError, SignInRequired, html_response, redirect, viewer_of
from adapters.dashboard.forms import FormRefused, query
from adapters.dashboard.markup import View, error_page
from adapters.dashboard.settings import DashboardSettings
from adapters.dashboard.signin_throttle import SignInThrottle

STATIC = Path(__file__).resolve().parent / "static"
STATIC_FILES = {"dashboard.css": "text/css; charset=utf-8", "dashboard.js": "text/javascript; charset=utf-8"}


def mount_dashboard(app: FastAPI, settings: DashboardSettings | None = None,
                    throttle: SignInThrottle | None = None) -> None:
    """Serve the dashboard at ``/`` (needs ``app.state.store``); ``settings`` default: sign-in off, loopback;
    ``throttle`` counts failed sign-ins (default: one of its own on the monotonic clock)."""
    app.state.dashboard = settings or DashboardSettings()
    app.state.signin_throttle = throttle or SignInThrottle()
    for module in (integrations, alerts, alert_detail, messages, operations, stats, signin):
        app.include_router(module.router)
    app.add_api_route("/static/{name}", static_file, methods=["GET"], include_in_schema=False)
    app.add_exception_handler(SignInRequired, _sign_in)
    app.add_exception_handler(PageError, _page_error)
    app.add_exception_handler(FormRefused, _form_refused)


def static_file(name: str) -> Response:
    if name not in STATIC_FILES:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(_read(name), media_type=STATIC_FILES[name], headers={"Cache-Control": "max-age=300"})


@functools.cache
def _read(name: str) -> bytes:
    return (STATIC / name).read_bytes()


async def _sign_in(_request: Request, error: Exception) -> Response:
    assert isinstance(error, SignInRequired)
    return redirect("/signin" + query(next=error.next_url))


async def _page_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, PageError)
    return _error(request, error.status, error.title, error.text)


async def _form_refused(request: Request, error: Exception) -> Response:
    return _error(request, 400, "Form refused", str(error))


def _error(request: Request, status: int, title: str, text: str) -> Response:
    viewer = viewer_of(request)
    return html_response(request, viewer, error_page(View.of(request, viewer), title, text), status)
