"""Alert notifications as a signed JSON POST to any HTTP endpoint (a paging system, an on-call tool, a ward app).

The body is ``{"event": "alert.raised" | "alert.resolved", "idempotency_key": ..., "alert": <outbox payload>,
"text": <one-line summary>}``, sent with ``Idempotency-Key: <key>`` (the same on every retry). With a secret the
request carries ``X-VitalsStream-Timestamp: <unix seconds>`` and ``X-VitalsStream-Signature: sha256=<hex>``, the
HMAC-SHA256 of ``<timestamp>.<body bytes>`` under the secret; docs/notify.md shows how a receiver checks it.

The HTTP plumbing (one ``requests`` session, no redirects, answers classified into ``DeliveryFailed``) is shared
with the Slack sender. Failure reasons name the host and the status, never the URL's path (Slack's carries its
secret) and never the answer's body (it may echo patient data).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from adapters.delivery import DeliveryFailed
from transforms.notification_text import RAISED, RESOLVED, notification_text

EVENTS = {RAISED: "alert.raised", RESOLVED: "alert.resolved"}
SIGNATURE_HEADER = "X-VitalsStream-Signature"
TIMESTAMP_HEADER = "X-VitalsStream-Timestamp"
USER_AGENT = "VitalsStream-notify/1"
TRANSIENT_STATUSES = frozenset({408, 425, 429})


def signature(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 under ``secret`` of the timestamp, a dot, and the exact body bytes."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def event_name(kind: str) -> str:
    """The webhook event for an outbox kind; a permanent failure for kinds notifications do not carry."""
    try:
        return EVENTS[kind]
    except KeyError:
        raise DeliveryFailed(f"notify senders deliver alert and alert_resolved, not {kind!r}", permanent=True) from None


class HttpPoster:
    """POSTs bodies to one URL over a ``requests`` session and turns every outcome into an answer or a failure."""

    def __init__(self, url: str, service: str, timeout_seconds: float = 10.0, proxy: str | None = None,
                 ca_file: str | None = None, error_detail: Callable[[requests.Response], str] | None = None):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{service} URL must be http:// or https:// with a host")
        self.url = url
        self.service = service
        self.timeout_seconds = timeout_seconds
        self.where = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
        self.error_detail = error_detail  # what of a failed answer may go into the reason ('' for nothing)
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy variables, .netrc credentials or CA bundle from the environment
        if proxy:
            self.session.proxies = {"http": proxy, "https": proxy}
        if ca_file:
            self.session.verify = ca_file

    def post(self, body: bytes, headers: Mapping[str, str]) -> requests.Response:
        """The 2xx answer; DeliveryFailed for anything else (transient or permanent, see ``is_permanent``)."""
        try:
            response = self.session.post(self.url, data=body, headers=dict(headers), timeout=self.timeout_seconds,
                                         allow_redirects=False)
        except requests.Timeout:
            waited = f"{self.timeout_seconds:g} s"
            raise DeliveryFailed(f"{self.service} at {self.where} did not answer within {waited}") from None
        except requests.exceptions.SSLError as error:
            raise DeliveryFailed(f"TLS with {self.service} at {self.where} failed: {_root_cause(error)}") from None
        except requests.ConnectionError as error:
            raise DeliveryFailed(f"cannot reach {self.service} at {self.where}: {_root_cause(error)}") from None
        except requests.RequestException as error:  # a bad URL or header value: configuration, not the network
            raise DeliveryFailed(f"request to {self.service} at {self.where} failed: {type(error).__name__}",
                                 permanent=isinstance(error, ValueError)) from None
        permanent = is_permanent(response.status_code)
        if permanent is not None:
            raise DeliveryFailed(self.describe(response), permanent=permanent)
        return response

    def describe(self, response: requests.Response) -> str:
        """"webhook at host:443 answered 404 Not Found": status and reason phrase, never the body."""
        described = f"{self.service} at {self.where} answered {response.status_code} {response.reason or ''}".rstrip()
        if 300 <= response.status_code < 400:
            described += " (redirects are not followed: configure the final URL)"
        detail = self.error_detail(response) if self.error_detail else ""
        return f"{described}: {detail}" if detail else described

    def close(self) -> None:
        self.session.close()


def is_permanent(status: int) -> bool | None:
    """None for 2xx (delivered); 408, 425, 429 and 5xx are transient (False); 3xx and other 4xx permanent (True)."""
    if 200 <= status < 300:
        return None
    if status in TRANSIENT_STATUSES or status >= 500:
        return False
    return 300 <= status < 500


def _root_cause(error: BaseException) -> str:
    """The innermost OS-level error ("[Errno 111] Connection refused"), without URLs or pool details."""
    seen: set[int] = set()
    cause: BaseException = error
    while id(cause) not in seen:
        seen.add(id(cause))
        inner = cause.__cause__ or cause.__context__
        if inner is None and cause.args and isinstance(cause.args[0], BaseException):
            inner = cause.args[0]
        if inner is None and getattr(cause, "reason", None) is not None and isinstance(cause.reason, BaseException):
            inner = cause.reason
        if inner is None:
            break
        cause = inner
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {cause.verify_message}"
    if isinstance(cause, OSError) and cause.strerror:
        return f"[Errno {cause.errno}] {cause.strerror}" if cause.errno else cause.strerror
    return type(cause).__name__


class WebhookSender:
    """Sender (adapters/delivery.py) for route destinations of kind notify with a webhook URL."""

    def __init__(self, url: str, timeout_seconds: float = 10.0, secret: str | bytes | None = None,
                 headers: Mapping[str, str] | None = None, proxy: str | None = None, ca_file: str | None = None):
        self.http = HttpPoster(url, "webhook", timeout_seconds, proxy, ca_file)
        self.secret = secret
        self.headers = dict(headers or {})

    def send(self, kind: str, key: str, payload: dict[str, Any]) -> str:
        body = json.dumps({"event": event_name(kind), "idempotency_key": key, "alert": payload,
                           "text": notification_text(kind, payload).subject},
                          ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")
        headers = {**self.headers, "Content-Type": "application/json", "User-Agent": USER_AGENT,
                   "Idempotency-Key": key}
        if self.secret is not None:
            timestamp = str(int(time.time()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = signature(self.secret, timestamp, body)
        return remote_id(self.http.post(body, headers))

    def close(self) -> None:
        self.http.close()


def remote_id(response: requests.Response) -> str:
    """The "id" of a JSON object answer ('' when there is none)."""
    if "json" not in response.headers.get("Content-Type", ""):
        return ""
    try:
        answer = response.json()
    except ValueError:
        return ""
    found = answer.get("id") if isinstance(answer, dict) else None
    return "" if found is None or isinstance(found, (dict, list)) else str(found)[:200]
