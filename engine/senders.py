"""The outbox lanes the configured routes ask for: each outbox destination with the sender of its kind.

``ehr_soap`` sends through zeep (adapters/ehr_soap.py, which keeps one client per thread itself);
``notify`` through a webhook, Slack or email sender, one per worker thread (requests does not promise that
one Session serves several threads). The zeep envelopes are logged only for routes that log PHI.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from adapters.delivery import Sender
from adapters.ehr_soap import EhrSoapSender
from adapters.notify import EmailSender, SlackSender, WebhookSender
from engine.outbox import Backoff, Lane
from engine.routes import RouteConfig
from engine.routes.destination import EhrSoapDestination, NotifyDestination

CLAIM_MARGIN_SECONDS = 30  # a claim outlives the slowest send by this much before another node may take it


class PerThread:
    """A Sender made once per calling thread."""

    def __init__(self, make: Callable[[], Sender]):
        self._make = make
        self._local = threading.local()
        self._made: list[Sender] = []
        self._lock = threading.Lock()

    def send(self, kind: str, key: str, payload: dict[str, Any]) -> str:
        sender = getattr(self._local, "sender", None)
        if sender is None:
            sender = self._local.sender = self._make()
            with self._lock:
                self._made.append(sender)
        return sender.send(kind, key, payload)

    def close(self) -> None:
        with self._lock:
            made, self._made = self._made, []
        for sender in made:
            sender.close()


def sender_for(destination: EhrSoapDestination | NotifyDestination, log_phi: bool = False) -> Sender:
    timeout = destination.timeout_seconds
    if isinstance(destination, EhrSoapDestination):
        return EhrSoapSender(destination.wsdl, destination.endpoint, timeout, destination.username,
                             destination.password, log_envelopes=log_phi)
    if destination.webhook is not None:
        hook = destination.webhook
        return PerThread(lambda: WebhookSender(hook.url, timeout, secret=hook.secret))
    if destination.slack is not None:
        slack = destination.slack
        return PerThread(lambda: SlackSender(slack.url, timeout))
    email = destination.email
    assert email is not None  # the model requires exactly one channel
    return PerThread(lambda: EmailSender(email.host, email.port, email.security, sender=email.sender,
                                         recipients=list(email.to), username=email.username,
                                         password=email.password, timeout_seconds=timeout))


def lanes_for(routes: Sequence[RouteConfig]) -> list[Lane]:
    """One lane per enabled outbox destination of every route."""
    lanes = []
    for config in routes:
        for destination in config.outbox_destinations():
            retry = destination.retry
            lanes.append(Lane(destination.name, sender_for(destination, config.log_phi), destination.concurrency,
                              Backoff(retry.first_delay_seconds, retry.max_delay_seconds, retry.max_attempts),
                              claim_seconds=destination.timeout_seconds + CLAIM_MARGIN_SECONDS))
    return lanes
