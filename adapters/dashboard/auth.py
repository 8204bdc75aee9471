"""Who is looking: signed session cookies, roles, and CSRF tokens for every form that changes something.

Every browser gets one cookie, ``vs_session``: base64 JSON signed with HMAC-SHA256 (the settings' session
secret), HttpOnly, SameSite=Strict. It holds a random nonce (``k``) and an expiry (``e``); once signed in,
the user's name (``u``) and a fingerprint of their password hash (``f``: changing a password or removing
a user ends their sessions; the role is read from the configuration at each request, never from the
cookie). The CSRF token of a form is an HMAC of the nonce, so a page from another site cannot forge one;
signing in issues a new nonce (no session fixation).

With sign-in off (no users) every visitor is treated as admin; the name recorded on their actions is the
one they gave on the sign-in page (``n``), else ``local``.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from adapters.dashboard.forms import read_form
from adapters.dashboard.passwords import ROLES, User
from adapters.dashboard.settings import DashboardSettings

COOKIE = "vs_session"
OPEN_NAME = "local"  # who acts when sign-in is off and no name was given


class SignInRequired(Exception):
    def __init__(self, next_url: str):
        super().__init__(next_url)
        self.next_url = next_url


class PageError(Exception):
    """Answered as an HTML page with ``status`` (404, 403, 409, ...): ``text`` in plain words."""

    def __init__(self, status: int, title: str, text: str):
        super().__init__(text)
        self.status = status
        self.title = title
        self.text = text


@dataclass(frozen=True)
class Viewer:
    name: str  # "" when nobody is signed in (sign-in on)
    role: str  # viewer, operator, admin; "" when nobody is signed in
    signed_in: bool
    csrf: str
    new_cookie: str | None = None  # to be set on the answer (a first visit or an expired session)

    def may(self, role: str) -> bool:
        return bool(self.role) and ROLES.index(self.role) >= ROLES.index(role)


def settings_of(request: Request) -> DashboardSettings:
    settings: DashboardSettings = request.app.state.dashboard
    return settings


def viewer_of(request: Request) -> Viewer:
    settings = settings_of(request)
    payload = read_cookie(settings, request.cookies.get(COOKIE, ""))
    new_cookie = None
    if payload is None:
        payload = fresh_payload(settings)
        new_cookie = sign(settings, payload)
    csrf = csrf_token(settings, payload["k"])
    if not settings.sign_in:
        return Viewer(str(payload.get("n") or OPEN_NAME), "admin", False, csrf, new_cookie)
    user = settings.users.get(str(payload.get("u", "")))
    if user is not None and hmac.compare_digest(str(payload.get("f", "")), fingerprint(settings, user)):
        return Viewer(user.name, user.role, True, csrf, new_cookie)
    return Viewer("", "", False, csrf, new_cookie)


def require_viewer(request: Request) -> Viewer:
    viewer = viewer_of(request)
    if settings_of(request).sign_in and not viewer.signed_in:
        query = f"?{request.url.query}" if request.url.query else ""
        raise SignInRequired(request.url.path + query)
    return viewer


def require_operator(request: Request) -> Viewer:
    viewer = require_viewer(request)
    if not viewer.may("operator"):
        raise PageError(403, "Not allowed", f"{viewer.name} is a {viewer.role}: this action needs an operator.")
    return viewer


@dataclass(frozen=True)
class Posted:
    viewer: Viewer
    fields: dict[str, str]

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, default)


async def posted_form(request: Request) -> Posted:
    """The form of a POST whose CSRF token matches the session (any visitor: sign-in, sign-out)."""
    viewer = viewer_of(request)
    fields = await read_form(request)
    if viewer.new_cookie is not None or not hmac.compare_digest(fields.get("csrf", ""), viewer.csrf):
        raise PageError(403, "Form expired", "This form is out of date (your session changed or expired). "
                                             "Go back, reload the page and try again.")
    return Posted(viewer, fields)


async def operator_form(request: Request) -> Posted:
    """The form of a POST that changes state: CSRF checked, signed in as operator or admin."""
    require_operator(request)
    return await posted_form(request)


Viewing = Annotated[Viewer, Depends(require_viewer)]
Operating = Annotated[Posted, Depends(operator_form)]
Posting = Annotated[Posted, Depends(posted_form)]


def fresh_payload(settings: DashboardSettings, **fields: Any) -> dict[str, Any]:
    return {"k": secrets.token_urlsafe(16), "e": int(time.time() + settings.session_hours * 3600), **fields}


def fingerprint(settings: DashboardSettings, user: User) -> str:
    return hmac.new(settings.session_secret, f"user:{user.name}:{user.password_hash}".encode(),
                    hashlib.sha256).hexdigest()[:24]


def csrf_token(settings: DashboardSettings, nonce: str) -> str:
    return hmac.new(settings.session_secret, f"csrf:{nonce}".encode(), hashlib.sha256).hexdigest()


def sign(settings: DashboardSettings, payload: dict[str, Any]) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(settings.session_secret, body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def read_cookie(settings: DashboardSettings, value: str) -> dict[str, Any] | None:
    """The payload of a cookie we signed that has not expired; None for anything else."""
    body, _, mac = value.partition(".")
    if not body or not mac or len(value) > 4096:
        return None
    expected = _b64(hmac.new(settings.session_secret, body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(mac, expected):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("k"), str):
        return None
    if not isinstance(payload.get("e"), int) or payload["e"] < time.time():
        return None
    return payload


def set_cookie(response: Response, request: Request, value: str, settings: DashboardSettings) -> None:
    response.set_cookie(COOKIE, value, max_age=int(settings.session_hours * 3600), httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/")


def html_response(request: Request, viewer: Viewer, body: str, status: int = 200) -> HTMLResponse:
    """A page, with the visitor's new session cookie when they had none; never cached (patient data)."""
    response = HTMLResponse(body, status_code=status, headers=NO_STORE)
    if viewer.new_cookie is not None:
        set_cookie(response, request, viewer.new_cookie, settings_of(request))
    return response


def fragment_response(request: Request, viewer: Viewer, content: str, digest: str) -> HTMLResponse:
    """A part of a page for the live refresh, with the digest its element compares."""
    response = html_response(request, viewer, content)
    response.headers["X-Digest"] = digest
    return response


def redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303, headers=NO_STORE)


NO_STORE = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                       "script-src 'self'; frame-ancestors 'none'; form-action 'self'"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
