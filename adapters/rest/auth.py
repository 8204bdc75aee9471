"""API keys: ``Authorization: Bearer <token>`` or ``X-API-Key: <token>``, compared in constant time.

With no key configured (ApiSettings.api_keys empty) everything is open. With keys, every write needs one;
reads need one only when ApiSettings.auth_reads is set.
"""
from __future__ import annotations

import hmac
import ipaddress

from fastapi import HTTPException, Request

from adapters.rest.settings import ApiSettings


def require_write_key(request: Request) -> None:
    settings: ApiSettings = request.app.state.api
    if settings.api_keys:
        _check(request, settings.api_keys)


def require_read_key(request: Request) -> None:
    settings: ApiSettings = request.app.state.api
    if settings.api_keys and settings.auth_reads:
        _check(request, settings.api_keys)


def is_authorised(request: Request) -> bool:
    """May this request see raw message content (PHI)? With keys configured: it carries a valid key.
    Without keys: it comes from a loopback address (behind a reverse proxy on the same host every caller
    does, so configure keys there)."""
    settings: ApiSettings = request.app.state.api
    if settings.api_keys:
        token = presented_token(request)
        return token is not None and matches(token, settings.api_keys)
    return is_loopback(request.client.host if request.client else "")


def is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def _check(request: Request, keys: tuple[str, ...]) -> None:
    token = presented_token(request)
    if token is None or not matches(token, keys):
        raise HTTPException(401, "a valid API key is required (Authorization: Bearer <key> or X-API-Key)",
                            headers={"WWW-Authenticate": 'Bearer realm="vitalsstream"'})


def presented_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key") or None


def matches(token: str, keys: tuple[str, ...]) -> bool:
    """Compares against every key, each in constant time, so timing tells nothing about the keys."""
    presented = token.encode()
    found = False
    for key in keys:
        found |= hmac.compare_digest(presented, key.encode())
    return found
