"""ASGI guard in front of the Spyne WSGI app (through a2wsgi).

The whole body is read on the event loop before a WSGI thread sees it, so:
- a body over the limit is a 413 (by Content-Length at once, else as soon as it grows past it);
- a client that disconnects mid-body gets a 400 (logged; nobody reads it) and no worker thread waits on a
  socket that will never deliver, so shutdown is not held up;
- any DOCTYPE (in UTF-8, UTF-16 or UTF-32) is a 400 before Spyne parses: SOAP forbids DTDs, and Spyne would
  turn entities into silent empty strings.
The body is handed on in the ASGI scope (``vitalsstream.body``, also reachable through a2wsgi's
``environ["asgi.scope"]``) so the service keeps the request as received.
"""
from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("vitalsstream.soap")

MAX_BODY = 2 * 1024 * 1024
BODY_KEY = "vitalsstream.body"
_DOCTYPE = tuple({"<!DOCTYPE".encode(codec) for codec in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le",
                                                          "utf-32-be")})

Scope = dict[str, Any]


class BodyGuard:
    """Wraps an ASGI app; only POST bodies are inspected (GET ?wsdl passes)."""

    def __init__(self, app: Any, max_body: int = MAX_BODY):
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body:
            await refuse(send, 413, f"the request body is larger than {self.max_body} bytes")
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                log.warning("SOAP client disconnected before its request was complete",
                            extra={"received": len(body)})
                await refuse(send, 400, "the request body was cut off")
                return
            body += message.get("body", b"")
            if len(body) > self.max_body:
                await refuse(send, 413, f"the request body is larger than {self.max_body} bytes")
                return
            if not message.get("more_body", False):
                break
        if any(marker in body for marker in _DOCTYPE):
            await refuse(send, 400, "a DOCTYPE is not allowed in a SOAP message")
            return
        data = bytes(body)
        delivered = False

        async def replay() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()

        await self.app({**scope, BODY_KEY: data}, replay, send)


async def refuse(send: Any, status: int, text: str) -> None:
    """A plain-text answer; harmless when the client is already gone."""
    payload = (text + "\n").encode()
    try:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(payload)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": payload})
    except OSError:
        pass
