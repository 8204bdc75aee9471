"""The REST API: readings, alerts, alert bands, the outbox and incidents, over the engine's own tables.

One module per job: ``readings``, ``submit`` (devices POST vitals through the channel), ``alerts``
(list, one), ``alert_actions`` (acknowledge, resolve), ``channels`` (per-route counters), ``messages`` (search
and the trail of one message), ``metrics`` (Prometheus, at /metrics), ``outbox`` (deliveries and
destinations: list, retry, pause, resume), ``incidents`` (operational problems: list, acknowledge, resolve),
``thresholds`` (the bands), ``health`` (readiness), ``auth`` (API keys), ``paging`` (cursors), ``errors``
(database failures mapped to answers). adapters/http_api.create_app is the one place that mounts them; the
store and the ApiSettings reach the endpoints through ``app.state`` (see ``deps``).
"""
from __future__ import annotations

from fastapi import APIRouter

from adapters.rest import (
    alert_actions,
    alerts,
    channels,
    incidents,
    messages,
    metrics,
    outbox,
    readings,
    reprocess,
    submit,
    thresholds,
)


def routers() -> list[APIRouter]:
    """The routers that need a store (readiness is mounted by create_app on its own)."""
    return [readings.router, submit.router, alerts.router, alert_actions.router, thresholds.router,
            channels.router, messages.router, reprocess.router, metrics.router, outbox.router, incidents.router]
