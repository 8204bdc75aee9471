"""Strict conformance checking through hl7apy, for routes that ask for it (``validation: strict``).

hl7apy checks a message against the HL7 message structure of its version: required segments and fields,
cardinality, data types. It costs 10-40 ms a message (see ARCHITECTURE.md), so it is opt-in per route and
runs after our own tolerant parse, never instead of it.
"""
from __future__ import annotations

import re

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.exceptions import HL7apyException, MaxChildLimitReached, ValidationError
from hl7apy.parser import parse_message

from transforms.errors import DATA_TYPE_ERROR, REQUIRED_FIELD_MISSING, SEGMENT_SEQUENCE_ERROR, Location, Problem

_MISSING = re.compile(r"Missing required child (?P<segment>[A-Z0-9]{3})\.(?P=segment)_(?P<field>\d+)")


def conformance_problems(text: str) -> list[Problem]:
    """Problems hl7apy finds in the message (empty when it conforms)."""
    segments = [line for line in text.replace("\r\n", "\r").replace("\n", "\r").split("\r") if line.strip()]
    try:
        message = parse_message("\r".join(segments), find_groups=True, validation_level=VALIDATION_LEVEL.STRICT)
        message.validate()
    except MaxChildLimitReached as error:
        return [Problem(SEGMENT_SEQUENCE_ERROR, f"strict validation: {error}")]
    except ValidationError as error:
        return [_validation_problem(str(error))]
    except HL7apyException as error:
        return [Problem(DATA_TYPE_ERROR, f"strict validation: {error}")]
    return []


def _validation_problem(text: str) -> Problem:
    missing = _MISSING.search(text)
    if missing:
        return Problem(REQUIRED_FIELD_MISSING, f"strict validation: {text}",
                       Location(missing["segment"], 1, int(missing["field"])))
    return Problem(DATA_TYPE_ERROR, f"strict validation: {text}")
