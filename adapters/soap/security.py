"""SOAP authentication: HTTP Basic or a WS-Security UsernameToken, checked before Spyne dispatches.

``AuthGate`` sits inside the body guard (``guard.BodyGuard``), which has read the whole body and refused any
DOCTYPE; it parses only the SOAP Header (lxml, no entities, no network; it stops at ``Body``). The rule
(docs/soap.md, "Authentication"):

- no credential at all: HTTP 401 with ``WWW-Authenticate: Basic`` (an Authorization header of another scheme
  is no credential here);
- a credential that is wrong, malformed, stale (wsu:Created more than 5 minutes from our clock) or replayed
  (a nonce already accepted in the last 10 minutes): a SOAP Client fault (1.2: Sender) "authentication
  failed", HTTP 500. Every credential offered must hold: Basic and a token together must both be right.

Secrets are compared in constant time against every configured user (so timing names neither the user nor
the password); only nonces of tokens that verified are remembered (a stranger cannot fill the cache). WSDL
GETs stay open. Passwords, digests and nonces are never logged.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

from lxml import etree

from adapters.soap.guard import BODY_KEY

log = logging.getLogger("vitalsstream.soap")

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
ENV11 = "http://schemas.xmlsoap.org/soap/envelope/"
ENV12 = "http://www.w3.org/2003/05/soap-envelope"
FRESHNESS = timedelta(minutes=5)
NONCE_TTL = 600.0  # seconds; covers Created +-5 minutes, after which a replay is stale anyway
NONCE_CAPACITY = 100_000

# what check() answers besides None (passed); the words go to the log, never to the client
MISSING = "no credential"
MALFORMED = "malformed credential"
WRONG = "wrong user name or password"
STALE = "Created is not within 5 minutes of our clock"
REPLAYED = "nonce already used"
BUSY = "too many nonces to remember"


class NonceCache:
    """Nonces accepted in the last ``ttl`` seconds; bounded and thread-safe. When full of live nonces it
    refuses new ones (fail closed: forgetting one would let it be replayed)."""

    def __init__(self, ttl: float = NONCE_TTL, capacity: int = NONCE_CAPACITY,
                 clock: Callable[[], float] = time.monotonic):
        self.ttl, self.capacity, self.clock = ttl, capacity, clock
        self._seen: OrderedDict[tuple[str, bytes], float] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, key: tuple[str, bytes]) -> str | None:
        now = self.clock()
        with self._lock:
            while self._seen and next(iter(self._seen.values())) <= now - self.ttl:
                self._seen.popitem(last=False)
            if key in self._seen:
                return REPLAYED
            if len(self._seen) >= self.capacity:
                return BUSY
            self._seen[key] = now
        return None


class Authenticator:
    """Checks a request's headers and body against ``users`` (name, password) pairs."""

    def __init__(self, users: Iterable[tuple[str, str]], nonces: NonceCache | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.users = tuple((name.encode(), password.encode()) for name, password in users)
        self.nonces = nonces or NonceCache()
        self.now = now

    def check(self, headers: dict[bytes, bytes], body: bytes) -> str | None:
        """None when every credential offered holds and there is one; else why not (MISSING, ...)."""
        offered = False
        scheme, _, value = headers.get(b"authorization", b"").partition(b" ")
        if scheme.lower() == b"basic":
            offered = True
            reason = self._basic(value.strip())
            if reason:
                return reason
        tokens = username_tokens(body)
        if len(tokens) > 1:
            return MALFORMED
        if tokens:
            offered = True
            reason = self._token(tokens[0])
            if reason:
                return reason
        return None if offered else MISSING

    def _basic(self, value: bytes) -> str | None:
        try:
            name, colon, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, ValueError):
            return MALFORMED
        if not colon:
            return MALFORMED
        return None if self._matches(name, password.encode(), lambda secret: secret) else WRONG

    def _token(self, token: Any) -> str | None:
        name = (token.findtext(f"{{{WSSE}}}Username") or "").strip()
        password = token.find(f"{{{WSSE}}}Password")
        nonce_text = token.findtext(f"{{{WSSE}}}Nonce")
        created = token.findtext(f"{{{WSU}}}Created")
        created = created.strip() if created is not None else None
        kind = password.get("Type", "#PasswordText").rpartition("#")[2] if password is not None else ""
        if not name or kind not in ("PasswordText", "PasswordDigest"):
            return MALFORMED
        try:
            nonce = base64.b64decode(nonce_text.strip(), validate=True) if nonce_text is not None else None
        except (binascii.Error, ValueError):
            return MALFORMED
        if kind == "PasswordDigest" and (not nonce or created is None):
            return MALFORMED
        if created is not None:
            reason = self._fresh(created)
            if reason:
                return reason
        if kind == "PasswordText":
            ok = self._matches(name, (password.text or "").encode(), lambda secret: secret)
        else:
            ok = self._matches(name, (password.text or "").strip().encode(),
                               lambda secret: digest(nonce or b"", created or "", secret))
        if not ok:
            return WRONG
        return self.nonces.remember((name, nonce)) if nonce is not None else None

    def _fresh(self, created: str) -> str | None:
        try:
            moment = datetime.fromisoformat(created)
        except ValueError:
            return MALFORMED
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return None if abs(self.now() - moment) <= FRESHNESS else STALE

    def _matches(self, name: str, presented: bytes, expected: Callable[[bytes], bytes]) -> bool:
        """Against every user, each comparison in constant time."""
        given = name.encode()
        found = False
        for user, secret in self.users:
            found |= hmac.compare_digest(user, given) & hmac.compare_digest(expected(secret), presented)
        return found


def digest(nonce: bytes, created: str, password: bytes) -> bytes:
    """WS-Security UsernameToken Profile: Base64(SHA-1(nonce + created + password))."""
    return base64.b64encode(hashlib.sha1(nonce + created.encode() + password).digest())


def username_tokens(body: bytes, chunk: int = 8192) -> list[Any]:
    """The UsernameTokens of the Envelope's Header/Security elements; parsing stops where Body starts. A
    document that is no SOAP envelope, or breaks before Body, yields what was found (Spyne faults it later)."""
    parser = etree.XMLPullParser(events=("start", "end"), resolve_entities=False, no_network=True,
                                 load_dtd=False)
    tokens: list[Any] = []
    depth = 0
    header = ""
    try:
        for start in range(0, len(body), chunk):
            parser.feed(body[start:start + chunk])
            for event, element in parser.read_events():
                if event == "start":
                    depth += 1
                    if depth == 1:
                        namespace = etree.QName(element).namespace
                        if element.tag not in (f"{{{ENV11}}}Envelope", f"{{{ENV12}}}Envelope"):
                            return tokens
                        header = f"{{{namespace}}}Header"
                    elif depth == 2 and element.tag != header:
                        return tokens  # Body (or anything else): the Header is behind us
                    continue
                if depth == 3 and element.tag == f"{{{WSSE}}}Security":
                    tokens.extend(element.findall(f"{{{WSSE}}}UsernameToken"))
                depth -= 1
    except etree.XMLSyntaxError:
        pass
    return tokens


class AuthGate:
    """ASGI, inside BodyGuard (whose scope carries the whole body): lets a request through to Spyne only when
    ``authenticator`` passes it; WSDL GETs always pass. ``soap12`` picks the fault's SOAP version."""

    def __init__(self, app: Any, authenticator: Authenticator, soap12: bool):
        self.app = app
        self.authenticator = authenticator
        self.soap12 = soap12

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or _wsdl_request(scope):
            await self.app(scope, receive, send)
            return
        reason = self.authenticator.check(dict(scope.get("headers", ())), scope.get(BODY_KEY, b""))
        if reason is None:
            await self.app(scope, receive, send)
            return
        log.warning("SOAP request refused: %s", reason, extra={"path": scope.get("path"), "reason": reason})
        if reason == MISSING:
            await _answer(send, 401, b"text/plain; charset=utf-8",
                          b"SOAP authentication required: HTTP Basic or a WS-Security UsernameToken\n",
                          [(b"www-authenticate", b'Basic realm="vitalsstream-soap", charset="UTF-8"')])
        elif reason == BUSY:
            await _answer(send, 500, *fault(self.soap12, False, "the service is busy; send the request again later"))
        else:
            await _answer(send, 500, *fault(self.soap12, True, "authentication failed"))


def fault(soap12: bool, client: bool, text: str) -> tuple[bytes, bytes]:
    """(content type, envelope) of a Client/Sender or Server/Receiver fault, in Spyne's prefixes."""
    if soap12:
        code = "Sender" if client else "Receiver"
        xml = (f'<soap12env:Envelope xmlns:soap12env="{ENV12}"><soap12env:Body><soap12env:Fault>'
               f'<soap12env:Code><soap12env:Value>soap12env:{code}</soap12env:Value></soap12env:Code>'
               f'<soap12env:Reason><soap12env:Text xml:lang="en">{escape(text)}</soap12env:Text></soap12env:Reason>'
               f'</soap12env:Fault></soap12env:Body></soap12env:Envelope>')
        return b"application/soap+xml; charset=utf-8", _xml(xml)
    code = "Client" if client else "Server"
    xml = (f'<soap11env:Envelope xmlns:soap11env="{ENV11}"><soap11env:Body><soap11env:Fault>'
           f'<faultcode>soap11env:{code}</faultcode><faultstring>{escape(text)}</faultstring>'
           f'</soap11env:Fault></soap11env:Body></soap11env:Envelope>')
    return b"text/xml; charset=utf-8", _xml(xml)


def _xml(text: str) -> bytes:
    return b"<?xml version='1.0' encoding='UTF-8'?>" + text.encode()


def _wsdl_request(scope: dict[str, Any]) -> bool:
    """As Spyne decides it (WsgiApplication.is_wsdl_request): GET with ?wsdl."""
    query = scope.get("query_string", b"").decode("latin-1")
    return scope["method"] == "GET" and query.split("=")[0].lower() == "wsdl"


async def _answer(send: Any, status: int, content_type: bytes, payload: bytes,
                  extra: list[tuple[bytes, bytes]] | None = None) -> None:
    try:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", content_type), (b"content-length", str(len(payload)).encode()),
                                *(extra or [])]})
        await send({"type": "http.response.body", "body": payload})
    except OSError:
        pass
