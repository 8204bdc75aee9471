"""The words of an alert notification: a subject line and a short plain-text body, for raised and resolved alerts.

Pure: the senders in adapters/notify put this text into an email, a Slack message or a webhook's ``text``.
Written for a phone's lock screen, most important first::

    CRITICAL heart rate 150 /min - patient P1
    CRITICAL heart rate 150 /min
    above critical high 140
    Patient: P1
    Device: MON-1
    Raised: 2026-11-21 10:00 UTC
    Alert 5 (threshold, route default)

The reading (value and unit) comes from the alert's message, which the database writes as
``<vital> <value> <unit> above|below <band> <bound>`` ("temperature <35 Cel below critical low 35"); a trend
alert's message ("heart rate rose 21 /min and spo2 fell 5.5 % within 10 minutes") is used whole. Times are
shown in UTC, labelled. These texts carry the patient id (they go to clinical staff) and are never logged.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

RAISED, RESOLVED = "alert", "alert_resolved"

VITAL_LABELS = {
    "heart_rate": "heart rate",
    "pulse_rate": "pulse rate",
    "spo2": "SpO2",
    "temperature": "temperature",
    "resp_rate": "resp. rate",
    "bp_systolic": "systolic BP",
    "bp_diastolic": "diastolic BP",
    "bp_mean": "mean BP",
    "glucose": "glucose",
    "heart_rate,spo2": "heart rate + SpO2",
}
UNIT_LABELS = {"Cel": "°C", "mm[Hg]": "mmHg"}

# "<vital> <value> <unit> <above|below ...>": the threshold alert text of sql/*/evaluate_alerts.
_THRESHOLD_MESSAGE = re.compile(r"^(?P<vital>\S+) (?P<value>[<>]=?-?[\d.]+|-?[\d.]+) (?P<unit>\S+) "
                                r"(?P<crossed>(?:above|below) .+)$")


@dataclass(frozen=True, slots=True)
class NotificationText:
    subject: str  # one line, also the summary of webhooks and Slack
    body: str  # a few short lines, plain text


def notification_text(kind: str, alert: Mapping[str, Any]) -> NotificationText:
    """Subject and body for ``kind`` "alert" (raised) or "alert_resolved"; ValueError for any other kind."""
    if kind == RAISED:
        return _raised(alert)
    if kind == RESOLVED:
        return _resolved(alert)
    raise ValueError(f"no notification text for kind {kind!r} (only {RAISED!r} and {RESOLVED!r})")


def _raised(alert: Mapping[str, Any]) -> NotificationText:
    headline, detail = _headline(alert)
    lines = [headline, detail, *_context(alert), f"Raised: {format_time(alert.get('raised_at'))}", _footer(alert)]
    return NotificationText(f"{headline} - patient {_text(alert.get('patient_id'))}", _join(lines))


def _resolved(alert: Mapping[str, Any]) -> NotificationText:
    headline, _ = _headline(alert)
    resolved_by, resolved_at = alert.get("resolved_by"), alert.get("resolved_at")
    done = "Resolved" + (f" by {resolved_by}" if resolved_by else "") + (
        f" at {format_time(resolved_at)}" if resolved_at else "")
    lines = [f"RESOLVED {headline}", done, *_context(alert), f"Raised: {format_time(alert.get('raised_at'))}",
             _footer(alert)]
    return NotificationText(f"RESOLVED {headline} - patient {_text(alert.get('patient_id'))}", _join(lines))


def _headline(alert: Mapping[str, Any]) -> tuple[str, str]:
    """("CRITICAL heart rate 150 /min", "above critical high 140"); a trend's whole message as the detail."""
    severity = _text(alert.get("severity")).upper() or "ALERT"
    vital = _text(alert.get("vital"))
    label = VITAL_LABELS.get(vital, vital.replace("_", " "))
    message = _text(alert.get("message"))
    matched = _THRESHOLD_MESSAGE.match(message)
    if matched and matched["vital"] == vital:
        unit = UNIT_LABELS.get(matched["unit"], matched["unit"])
        return f"{severity} {label} {matched['value']} {unit}", matched["crossed"]
    if alert.get("kind") == "trend":
        return f"{severity} trend: {label}", message
    return f"{severity} {label}", message


def _context(alert: Mapping[str, Any]) -> list[str]:
    return [f"Patient: {_text(alert.get('patient_id'))}", f"Device: {_text(alert.get('device_id')) or '-'}"]


def _footer(alert: Mapping[str, Any]) -> str:
    details = [_text(alert.get("kind")), f"route {_text(alert.get('route'))}" if alert.get("route") else ""]
    shown = ", ".join(detail for detail in details if detail)
    return f"Alert {_text(alert.get('alert_id'))}" + (f" ({shown})" if shown else "")


def format_time(value: object) -> str:
    """"2026-11-21T10:00:00Z" -> "2026-11-21 10:00 UTC"; text that is not an ISO time is shown as given."""
    if not isinstance(value, str) or not value:
        return "-"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    return parsed.strftime("%Y-%m-%d %H:%M UTC")


def _text(value: object) -> str:
    """A payload field as one line of text ('' for a missing one)."""
    return "" if value is None else " ".join(str(value).split())


def _join(lines: list[str]) -> str:
    return "\n".join(line for line in lines if line) + "\n"
