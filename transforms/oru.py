"""HL7 v2 ORU^R01 -> canonical vitals readings.

An ORU^R01 carries one or more patients (PID), each with one or more order groups (OBR) of observations
(OBX). Monitors (IHE PCD-01) send a tree of OBX rows: device, channel and metric rows, linked by the dotted
containment path in OBX-4; only metric rows carry values. Which OBX rows are vitals is decided by the code
map (OBX-3), never by position.

Where: patient PID-3.1 (first repetition); device OBX-18.1, else the OBX-18 of the row containing this one
(OBX-4 path), else MSH-3.1; time OBX-14, else OBR-7, else MSH-7.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from transforms.codes import DEFAULT_CODES, CodeMap, convert
from transforms.errors import (
    DATA_TYPE_ERROR,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE_ERROR,
    TABLE_VALUE_NOT_FOUND,
    MessageProblems,
    Problem,
)
from transforms.hl7.header import Header, unsupported
from transforms.hl7.parser import Message, Segment
from transforms.hl7.timestamps import parse_timestamp
from transforms.vitals import NO_READING_STATUSES, READING_STATUSES, VITALS, VitalsReading

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)$")
_COMPARATORS = frozenset({"", "=", ">", "<", ">=", "<="})
_TEXT_TYPES = frozenset({"", "NM", "ST", "TX", "FT"})


@dataclass(frozen=True)
class OruMapping:
    """What a route decides about the HL7 transform: its code map and the senders' time zone."""

    codes: CodeMap = DEFAULT_CODES
    zone: tzinfo = UTC


@dataclass
class _Context:
    """What the segments before an OBX say about it."""

    header: Header
    msh: Segment
    patient: str = ""
    pid: Segment | None = None
    obr: Segment | None = None
    equipment: dict[str, str] = field(default_factory=dict)  # OBX-4 path -> OBX-18.1, per OBR group
    problems: list[Problem] = field(default_factory=list)


ORU_R01 = frozenset({("ORU", "R01")})


def transform(message: Message, header: Header, mapping: OruMapping = OruMapping(),
              message_types: frozenset[tuple[str, str]] = ORU_R01) -> list[VitalsReading]:
    """Readings of an accepted message type; MessageProblems for an unsupported header or bad content."""
    problems = unsupported(header, message_types)
    if problems:
        raise MessageProblems(problems)
    return readings_from_oru(message, header, mapping)


def readings_from_oru(message: Message, header: Header, mapping: OruMapping = OruMapping()) -> list[VitalsReading]:
    """Every vital-sign reading in the message. Raises MessageProblems listing every problem found."""
    context = _Context(header, message.msh)
    readings = []
    for segment in message.segments:
        if segment.name == "PID":
            context.pid, context.patient = segment, segment.get(3).strip()
            context.obr, context.equipment = None, {}
            if not context.patient:
                context.problems.append(Problem(REQUIRED_FIELD_MISSING, "PID-3 patient identifier is empty",
                                                segment.location(3, 1)))
        elif segment.name == "OBR":
            context.obr, context.equipment = segment, {}
        elif segment.name == "OBX":
            reading = _reading(segment, context, mapping)
            if reading is not None:
                readings.append(reading)
    if context.problems:
        raise MessageProblems(context.problems)
    return readings


def _reading(obx: Segment, context: _Context, mapping: OruMapping) -> VitalsReading | None:
    """The reading one OBX row carries, None when it carries none; problems go to the context."""
    path, equipment = obx.get(4).strip(), obx.get(18).strip()
    if path and equipment:
        context.equipment[path] = equipment
    status = obx.get(11).strip().upper()
    if status in NO_READING_STATUSES or not obx.field(5).strip():
        return None
    vital, system, code = mapping.codes.identify(obx.components(3))  # OBX-3
    if vital is None:
        return None
    problems = []
    if status and status not in READING_STATUSES:
        problems.append(Problem(TABLE_VALUE_NOT_FOUND, f"OBX-11 result status {status!r} is not in table 0085",
                                obx.location(11)))
    if context.pid is None:
        problems.append(Problem(SEGMENT_SEQUENCE_ERROR, "OBX with a vital sign before any PID segment",
                                obx.location()))
    value = _value(obx, problems)
    sent_unit = obx.get(6).strip()  # OBX-6.1
    unit = _unit(obx, sent_unit, vital, mapping.codes, problems)
    observed_at = _observed_at(obx, context, mapping.zone, problems)
    canonical = None
    if value is not None and unit is not None:
        canonical = convert(value[0], unit, VITALS[vital].unit)
        if canonical is None:
            problems.append(Problem(TABLE_VALUE_NOT_FOUND, f"unit {unit} does not measure {vital}",
                                    obx.location(6)))
    if problems or canonical is None or observed_at is None or value is None:
        context.problems.extend(problems)
        return None
    return VitalsReading(
        patient_id=context.patient,
        device_id=_device(path, equipment, context),
        vital=vital,
        value=canonical,
        unit=VITALS[vital].unit,
        observed_at=observed_at,
        status=status or "R",
        source_system=system,
        source_code=code,
        source_value=value[1],
        source_unit=sent_unit,
        control_id=context.header.control_id,
        comparator=value[2],
    )


def _value(obx: Segment, problems: list[Problem]) -> tuple[float, str, str] | None:
    """(number, value as sent, comparator) from OBX-5 according to OBX-2 (NM, or SN such as ``>^300``)."""
    value_type = obx.get(2).strip().upper()
    if value_type == "SN":
        comparator, number, separator, second = (obx.components(5) + ["", "", "", ""])[:4]
        comparator, number = comparator.strip(), number.strip()
        if separator.strip() or second.strip() or comparator not in _COMPARATORS:
            problems.append(Problem(DATA_TYPE_ERROR, "OBX-5 structured numeric is a range or ratio, not one "
                                    "value", obx.location(5)))
            return None
        if not _NUMBER.match(number):
            problems.append(Problem(DATA_TYPE_ERROR, f"OBX-5 number {number!r} is not numeric",
                                    obx.location(5, 2)))
            return None
        return float(number), comparator.lstrip("=") + number, comparator.lstrip("=")
    if value_type not in _TEXT_TYPES:
        problems.append(Problem(DATA_TYPE_ERROR, f"OBX-2 value type {value_type} cannot carry a vital sign",
                                obx.location(2)))
        return None
    text = obx.get(5).strip()
    if not _NUMBER.match(text):
        problems.append(Problem(DATA_TYPE_ERROR, f"OBX-5 value {text!r} is not numeric", obx.location(5)))
        return None
    return float(text), text, ""


def _unit(obx: Segment, code: str, vital: str, codes: CodeMap, problems: list[Problem]) -> str | None:
    """UCUM unit of OBX-6 (``code`` is OBX-6.1, then the text); the vital's canonical unit when it may go
    without one."""
    text = obx.get(6, 2).strip()
    if not code and not text:
        if VITALS[vital].unit_optional:
            return VITALS[vital].unit
        problems.append(Problem(REQUIRED_FIELD_MISSING, f"OBX-6 units are required for {vital}",
                                obx.location(6)))
        return None
    ucum = (codes.ucum(code) if code else None) or (codes.ucum(text) if text else None)
    if ucum is None:
        problems.append(Problem(TABLE_VALUE_NOT_FOUND, f"OBX-6 unit {code or text!r} is not known",
                                obx.location(6)))
    return ucum


def _observed_at(obx: Segment, context: _Context, zone: tzinfo, problems: list[Problem]) -> datetime | None:
    """OBX-14, else OBR-7, else MSH-7, as UTC."""
    for segment, number in ((obx, 14), (context.obr, 7), (context.msh, 7)):
        text = segment.get(number).strip() if segment is not None else ""
        if text:
            try:
                return parse_timestamp(text, zone)
            except ValueError:
                problems.append(Problem(DATA_TYPE_ERROR, f"{segment.name}-{number} {text!r} is not a valid "
                                        "time stamp", segment.location(number)))
                return None
    problems.append(Problem(REQUIRED_FIELD_MISSING, "no observation time in OBX-14, OBR-7 or MSH-7",
                            context.msh.location(7)))
    return None


def _device(path: str, equipment: str, context: _Context) -> str:
    """OBX-18.1 of this row, else of the nearest row containing it (OBX-4 path prefix), else MSH-3.1."""
    if equipment:
        return equipment
    while "." in path:
        path = path.rsplit(".", 1)[0]
        if path in context.equipment:
            return context.equipment[path]
    return context.equipment.get(path) or context.header.sender
