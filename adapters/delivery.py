"""What every outbound sender (EHR over SOAP, webhook, Slack, email) promises the outbox worker.

A sender delivers one outbox record: ``send(kind, key, payload) -> remote id``. ``kind`` is
``observations`` (one message's readings), ``alert`` (an alert was raised) or ``alert_resolved``;
``key`` is the record's idempotency key (the same on every retry, so the receiver can tell a resend);
``payload`` is the JSON document stored in the outbox row (see docs/outbox.md for its fields).

A sender that fails raises ``DeliveryFailed``: transient (timeouts, connection errors, HTTP 5xx, SOAP
Server faults) is retried with backoff; permanent (SOAP Client faults, HTTP 3xx and 4xx other than 408,
425 and 429) goes to the dead letters at once. Any other exception is a bug in the sender and counts as
transient.
"""
from __future__ import annotations

from typing import Any, Protocol

KINDS = ("observations", "alert", "alert_resolved")


class DeliveryFailed(Exception):
    """A delivery that did not happen; ``permanent`` when sending it again cannot help."""

    def __init__(self, reason: str, permanent: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class Sender(Protocol):
    def send(self, kind: str, key: str, payload: dict[str, Any]) -> str:
        """Deliver one record; the receiver's id for it ('' when it gives none). Raises DeliveryFailed."""
        ...

    def close(self) -> None:
        """Release connections (called when the engine stops)."""
        ...
