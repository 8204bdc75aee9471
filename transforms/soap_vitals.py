"""SOAP ``SubmitVitals`` readings -> canonical readings (pure: the adapter hands plain values over).

Each reading names its patient, device, vital (transforms.vitals.VITALS), value, UCUM unit and observation
time. A unit is accepted when it is the vital's canonical unit or converts to it (transforms.codes); the
reading is stored in the canonical unit with the value and unit as sent kept as provenance. All or nothing:
any bad reading rejects the whole request, with one plain sentence per problem.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from transforms.codes import DEFAULT_CODES, CodeMap, convert
from transforms.vitals import VITALS, VitalsReading

SOURCE_SYSTEM = "SOAP"
STATUS = "R"  # sent by a system, not verified by a clinician here (as for REST)
MAX_ID = {"patient_id": 100, "device_id": 200}


class SoapInputError(ValueError):
    """The request's readings are wrong; ``problems`` says how, in plain words (no values echoed)."""

    def __init__(self, problems: Sequence[str]):
        super().__init__("; ".join(problems))
        self.problems = list(problems)


def readings_from_soap(items: Sequence[Mapping[str, object]], control_id: str,
                       codes: CodeMap = DEFAULT_CODES) -> list[VitalsReading]:
    """``items``: dicts with patient_id, device_id, vital, value, unit, observed_at (strings or None;
    observed_at may be a datetime). Raises SoapInputError naming each bad reading by its 1-based number."""
    if not items:
        raise SoapInputError(["no reading given: send at least one Reading"])
    readings, problems = [], []
    for number, item in enumerate(items, 1):
        try:
            readings.append(_reading(item, control_id, codes))
        except SoapInputError as error:
            problems += [f"reading {number}: {problem}" for problem in error.problems]
    if problems:
        raise SoapInputError(problems)
    return readings


def _reading(item: Mapping[str, object], control_id: str, codes: CodeMap) -> VitalsReading:
    problems: list[str] = []
    ids = {name: _text(item.get(name)) for name in MAX_ID}
    for name, value in ids.items():
        label = name.replace("_", " ")
        if not value:
            problems.append(f"{label} is missing")
        elif len(value) > MAX_ID[name]:
            problems.append(f"{label} is longer than {MAX_ID[name]} characters")
    vital = _text(item.get("vital"))
    kind = VITALS.get(vital)
    if kind is None:
        problems.append(f"vital {vital!r} is not one of {', '.join(VITALS)}" if vital else "vital is missing")
    sent_value = _text(item.get("value"))
    value = _number(sent_value, problems)
    sent_unit = _text(item.get("unit"))
    observed_at = _moment(item.get("observed_at"), problems)
    canonical_value = None
    if kind is not None and value is not None:
        ucum = codes.ucum(sent_unit) if sent_unit else (kind.unit if kind.unit_optional else None)
        if not sent_unit and ucum is None:
            problems.append(f"unit is missing (a {vital} reading needs one, in {kind.unit})")
        elif ucum is None:
            problems.append(f"unit {sent_unit!r} is not a UCUM unit we know")
        else:
            canonical_value = convert(value, ucum, kind.unit)
            if canonical_value is None:
                problems.append(f"unit {sent_unit!r} cannot express {vital} (use {kind.unit})")
    if problems:
        raise SoapInputError(problems)
    assert kind is not None and canonical_value is not None and observed_at is not None
    return VitalsReading(patient_id=ids["patient_id"], device_id=ids["device_id"], vital=kind.name,
                         value=canonical_value, unit=kind.unit, observed_at=observed_at, status=STATUS,
                         source_system=SOURCE_SYSTEM, source_code=kind.name, source_value=sent_value,
                         source_unit=sent_unit, control_id=control_id)


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def _number(text: str, problems: list[str]) -> float | None:
    if not text:
        problems.append("value is missing")
        return None
    try:
        value = float(text)
    except ValueError:
        problems.append("value is not a number")
        return None
    if not math.isfinite(value):
        problems.append("value is not a finite number")
        return None
    return value


def _moment(value: object, problems: list[str]) -> datetime | None:
    """ISO 8601 (``2024-03-05T10:10:00Z``); without an offset it is UTC."""
    if isinstance(value, datetime):
        moment = value
    else:
        text = _text(value)
        if not text:
            problems.append("observed time is missing")
            return None
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            problems.append("observed time is not an ISO 8601 date and time")
            return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
