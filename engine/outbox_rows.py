"""What the store transaction writes to the outbox: one row per record a destination must get.

- ``observations``: one row per stored message, patient and destination that takes readings; the
  payload holds that patient's readings of the message (one RecordObservations request).
- ``alert``: one row per raised alert and destination that takes alerts of its severity; a notify
  destination records a repeat of the same patient, vital and kind within its suppression window as
  SUPPRESSED (kept for audit, never sent).
- ``alert_resolved``: when an operator resolves an alert, for every destination that was queued the alert
  itself (engine/operator_actions.py): whoever was told about an alert is told it is over.

Idempotency keys are stable per record (``obs:<message id>:<n>``, ``alert:<alert id>``,
``alert_resolved:<alert id>``), so every retry carries the same key and the receiver can tell a resend.
Payload fields are listed in docs/outbox.md. Pure functions: no I/O here.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adapters.sql_store import utc_naive
from transforms.vitals import VitalsReading


@dataclass(frozen=True)
class OutboxTarget:
    """An outbox destination as the store transaction sees it: what it takes, nothing about how it sends."""

    name: str
    readings: bool
    alerts: bool
    severities: frozenset[str] = frozenset({"warning", "critical"})
    suppress_seconds: float = 0.0  # notify: a repeat within this window is SUPPRESSED


def iso(moment: datetime | None) -> str | None:
    """A stored (UTC, naive) or aware time as ISO 8601 with Z."""
    if moment is None:
        return None
    text = moment.replace(tzinfo=None).isoformat(timespec="microseconds")
    return text.removesuffix(".000000") + "Z"


def observation_rows(targets: Iterable[OutboxTarget], route: str, message_id: int,
                     readings: Sequence[VitalsReading], now: datetime) -> list[tuple[Any, ...]]:
    """Rows (adapters.sql_store.OUTBOX_COLUMNS order) for one stored message: per target taking readings,
    one per patient."""
    wanting = [target for target in targets if target.readings]
    if not wanting or not readings:
        return []
    by_patient: dict[str, list[VitalsReading]] = {}
    for reading in readings:
        by_patient.setdefault(reading.patient_id, []).append(reading)
    rows = []
    for ordinal, (patient_id, theirs) in enumerate(by_patient.items(), 1):
        payload = json.dumps({"message_id": message_id, "route": route, "patient_id": patient_id,
                              "readings": [_reading(r) for r in theirs]}, separators=(",", ":"))
        for target in wanting:
            rows.append((target.name, route, "observations", f"obs:{message_id}:{ordinal}", message_id, None,
                         patient_id, payload, "PENDING", 0, now, now))
    return rows


def alert_payload(alert: Any, route: str, message_id: int | None) -> dict[str, Any]:
    """The alert as destinations receive it (``alert`` is an alerts row)."""
    return {"alert_id": alert.id, "route": route, "patient_id": alert.patient_id, "device_id": alert.device_id,
            "vital": alert.vital, "severity": alert.severity, "kind": alert.kind, "state": alert.state,
            "message": alert.message, "value": alert.value, "raised_at": iso(alert.first_seen_at),
            "message_id": message_id, "resolved_at": iso(alert.resolved_at), "resolved_by": alert.resolved_by}


def alert_row(destination: str, kind: str, alert: Any, route: str, message_id: int | None, now: datetime,
              suppressed: bool = False) -> tuple[Any, ...]:
    """One ``alert`` or ``alert_resolved`` row for ``destination``."""
    payload = json.dumps(alert_payload(alert, route, message_id), separators=(",", ":"))
    return (destination, route, kind, f"{kind}:{alert.id}", message_id, alert.id, alert.patient_id, payload,
            "SUPPRESSED" if suppressed else "PENDING", 0, now, now)


def takes_alert(target: OutboxTarget, severity: str) -> bool:
    return target.alerts and severity in target.severities


def _reading(reading: VitalsReading) -> dict[str, Any]:
    return {"vital": reading.vital, "value": reading.value, "unit": reading.unit,
            "observed_at": iso(utc_naive(reading.observed_at)),
            "status": reading.status, "device_id": reading.device_id, "source_system": reading.source_system,
            "source_code": reading.source_code, "comparator": reading.comparator}
