"""Outbox payloads -> the EHR's SOAP requests (wsdl/ehr.wsdl), as the keyword arguments zeep takes.

``request_for(kind, key, payload)`` gives ``(operation, arguments)``: kind ``observations`` becomes
RecordObservations, ``alert`` and ``alert_resolved`` become RecordAlert. Times become aware UTC datetimes
(xs:dateTime); a time without an offset counts as UTC (the store keeps UTC). Empty strings are left out
(the elements are optional). A payload that cannot make a valid request raises ``RequestError`` naming the
field, never its value (payloads hold patient data).
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

MAX_KEY = 200
OPERATIONS = {"observations": "RecordObservations", "alert": "RecordAlert", "alert_resolved": "RecordAlert"}


class RequestError(ValueError):
    """The payload cannot become a request; sending it again will not help."""


def request_for(kind: str, key: str, payload: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The operation name and its arguments for one outbox record."""
    if kind not in OPERATIONS:
        raise RequestError(f"no EHR operation for record kind {kind!r}")
    build = observations_request if kind == "observations" else alert_request
    return OPERATIONS[kind], build(key, payload)


def observations_request(key: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """RecordObservations: one stored message's readings for one patient."""
    where = "observations payload: "
    readings = payload.get("readings")
    if not isinstance(readings, list) or not readings:
        raise RequestError(f"{where}readings must be a non-empty list")
    return {
        "IdempotencyKey": _key(key),
        "PatientId": _required_text(payload, "patient_id", where),
        "SourceMessageId": _integer(payload, "message_id", where, required=True),
        "Route": _text(payload.get("route")),
        "Observation": [_observation(reading, index) for index, reading in enumerate(readings)],
    }


def alert_request(key: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """RecordAlert: an alert as raised, or as it is now (resolved, with who and when)."""
    where = "alert payload: "
    return {
        "IdempotencyKey": _key(key),
        "AlertId": _integer(payload, "alert_id", where, required=True),
        "PatientId": _required_text(payload, "patient_id", where),
        "DeviceId": _text(payload.get("device_id")),
        "Vital": _required_text(payload, "vital", where),
        "Severity": _required_text(payload, "severity", where),
        "Kind": _required_text(payload, "kind", where),
        "State": _required_text(payload, "state", where),
        "Text": _text(payload.get("message")),
        "Value": _number(payload, "value", where, required=False),
        "RaisedAt": _time(payload, "raised_at", where, required=True),
        "ResolvedAt": _time(payload, "resolved_at", where, required=False),
        "ResolvedBy": _text(payload.get("resolved_by")),
        "SourceMessageId": _integer(payload, "message_id", where, required=False),
    }


def _observation(reading: object, index: int) -> dict[str, Any]:
    where = f"observations payload: readings[{index}]."
    if not isinstance(reading, Mapping):
        raise RequestError(f"observations payload: readings[{index}] must be an object")
    return {
        "Vital": _required_text(reading, "vital", where),
        "Value": _number(reading, "value", where, required=True),
        "Unit": _text(reading.get("unit")),
        "ObservedAt": _time(reading, "observed_at", where, required=True),
        "Status": _text(reading.get("status")),
        "DeviceId": _text(reading.get("device_id")),
        "SourceSystem": _text(reading.get("source_system")),
        "SourceCode": _text(reading.get("source_code")),
        "Comparator": _text(reading.get("comparator")),
    }


def _key(key: object) -> str:
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY:
        raise RequestError(f"the idempotency key must be 1 to {MAX_KEY} characters")
    return key


def _text(value: object) -> str | None:
    """Optional text: None and empty strings are left out."""
    if value is None:
        return None
    text = str(value)
    return text if text.strip() else None


def _required_text(item: Mapping[str, Any], name: str, where: str) -> str:
    text = _text(item.get(name))
    if text is None:
        raise RequestError(f"{where}{name} is missing or empty")
    return text


def _integer(item: Mapping[str, Any], name: str, where: str, required: bool) -> int | None:
    value = item.get(name)
    if value is None:
        if required:
            raise RequestError(f"{where}{name} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RequestError(f"{where}{name} must be an integer")
    try:
        return int(value)
    except ValueError:
        raise RequestError(f"{where}{name} must be an integer") from None


def _number(item: Mapping[str, Any], name: str, where: str, required: bool) -> float | None:
    value = item.get(name)
    if value is None:
        if required:
            raise RequestError(f"{where}{name} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError(f"{where}{name} must be a number")
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise RequestError(f"{where}{name} must be a finite number")
    return number


def _time(item: Mapping[str, Any], name: str, where: str, required: bool) -> datetime | None:
    value = item.get(name)
    if value is None or value == "":
        if required:
            raise RequestError(f"{where}{name} is missing")
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise RequestError(f"{where}{name} is not an ISO 8601 time") from None
    if not isinstance(value, datetime):
        raise RequestError(f"{where}{name} must be an ISO 8601 time")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
