"""``/signin`` and ``/signout``. With sign-in on: name and password, checked against the configured PBKDF2
hashes (a failure is logged with the client address, never the name typed: it may be a password); after
too many failures for a name or an address, attempts are refused for a while (429, ``signin_throttle.py``).
With sign-in off: the page only asks for the name to record on your actions (acknowledged by, resolved by).
"""
from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from adapters.dashboard.auth import (
    Posting,
    fingerprint,
    fresh_payload,
    html_response,
    redirect,
    set_cookie,
    settings_of,
    sign,
    viewer_of,
)
from adapters.dashboard.forms import local_path
from adapters.dashboard.markup import View, esc, page
from adapters.dashboard.passwords import check_credentials
from adapters.dashboard.signin_throttle import Pause, SignInThrottle

log = logging.getLogger("vitalsstream.dashboard")
router = APIRouter()
NAME_LIMIT = 100


@router.get("/signin", response_class=HTMLResponse, include_in_schema=False)
def signin_page(request: Request) -> HTMLResponse:
    viewer = viewer_of(request)
    back = local_path(request.query_params.get("next", ""), "/")
    return html_response(request, viewer, _page(View.of(request, viewer), back))


@router.post("/signin", include_in_schema=False)
def signin(request: Request, posted: Posting) -> Response:
    settings = settings_of(request)
    back = local_path(posted.get("next"), "/")
    name = posted.get("name")[:NAME_LIMIT]
    if not settings.sign_in:
        response = redirect(back)
        set_cookie(response, request, sign(settings, fresh_payload(settings, **({"n": name} if name else {}))),
                   settings)
        return response
    address = request.client.host if request.client else ""
    throttle = throttle_of(request)
    pause = throttle.admit(name, address)
    if pause is not None:
        log.warning("dashboard sign-in paused", extra={"client": address, "paused_for": pause.of,
                                                       "retry_after_seconds": pause.seconds})
        view = View.of(request, posted.viewer)
        response = html_response(request, posted.viewer, _page(view, back, _paused(pause)), 429)
        response.headers["Retry-After"] = str(pause.seconds)
        return response
    user = check_credentials(dict(settings.users), name, posted.get("password"))
    if user is None:
        log.warning("dashboard sign-in failed", extra={"client": address})
        view = View.of(request, posted.viewer)
        return html_response(request, posted.viewer, _page(view, back, "Wrong name or password."), 401)
    throttle.succeeded(name, address)
    response = redirect(back)
    set_cookie(response, request, sign(settings, fresh_payload(settings, u=user.name, f=fingerprint(settings, user))),
               settings)
    return response


@router.post("/signout", include_in_schema=False)
def signout(request: Request, posted: Posting) -> Response:
    settings = settings_of(request)
    response = redirect("/signin" if settings.sign_in else "/")
    set_cookie(response, request, sign(settings, fresh_payload(settings)), settings)
    return response


def throttle_of(request: Request) -> SignInThrottle:
    throttle: SignInThrottle = request.app.state.signin_throttle
    return throttle


def _paused(pause: Pause) -> str:
    whose = "for this name" if pause.of == "name" else "from this address"
    return (f"Too many failed sign-ins: sign-in {whose} is paused for {pause.seconds} seconds. "
            f"Try again after that; if you forgot your password, ask an administrator.")


def _page(view: View, back: str, problem: str = "") -> str:
    alert = f'<p class="problem" role="alert">{esc(problem)}</p>' if problem else ""
    hidden = (f'<input type="hidden" name="csrf" value="{esc(view.viewer.csrf)}">'
              f'<input type="hidden" name="next" value="{esc(back)}">')
    if not view.settings.sign_in:
        body = (f'<p>No users are configured, so there is nothing to sign in to. Give the name to record on '
                f'what you acknowledge, resolve or retry (now: <strong>{esc(view.viewer.name)}</strong>).</p>'
                f'<form class="signin" method="post" action="/signin">{hidden}'
                f'<label>Your name <input name="name" maxlength="{NAME_LIMIT}" autocomplete="name" required '
                f'value="{esc(view.viewer.name)}"></label><button class="button" type="submit">Save</button></form>')
        return page(view, "Your name", body)
    body = (f'{alert}<form class="signin" method="post" action="/signin">{hidden}'
            f'<label>Name <input name="name" maxlength="{NAME_LIMIT}" autocomplete="username" required '
            f'autofocus></label>'
            f'<label>Password <input name="password" type="password" autocomplete="current-password" required>'
            f'</label><button class="button" type="submit">Sign in</button></form>')
    return page(view, "Sign in", body)
