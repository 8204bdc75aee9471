"""What the simulated HL7 senders share: unique control ids (MSH-10), time stamps, and segments built from
numbered fields, so an OBX-18 is really field 18 whatever the fields before it hold.
"""
from __future__ import annotations

import itertools
import secrets
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime


class ControlIds:
    """MSH-10 values unique across demo runs: a prefix, a random run token and a sequence number, at most
    20 characters (MSH-10's length up to v2.6)."""

    def __init__(self, prefix: str, run_token: str | None = None):
        self.prefix = prefix
        self.run_token = run_token or secrets.token_hex(3).upper()
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            number = next(self._numbers)
        return f"{self.prefix}-{self.run_token}-{number:06d}"


def hl7_time(moment: datetime, offset: bool = True) -> str:
    """HL7 DTM to the second: ``20260521101500+0200`` in the moment's own zone, or without ``offset`` the UTC
    time with no zone (the demo routes read zone-less times as UTC)."""
    if not offset:
        return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S")
    return moment.strftime("%Y%m%d%H%M%S%z")


def segment(name: str, fields: Mapping[int, str]) -> str:
    """``segment("OBX", {1: "1", 3: "8867-4^Heart rate^LN", 18: "MON-7"})``; field numbers as in the
    standard (MSH is built by hand: its field 1 is the separator itself)."""
    last = max(fields, default=0)
    return "|".join([name, *(fields.get(number, "") for number in range(1, last + 1))])


def message(segments: Sequence[str], terminator: str = "\r") -> bytes:
    """Segments joined and ended by ``terminator`` (HL7 says CR; some vendors send LF or CRLF)."""
    return "".join(s + terminator for s in segments).encode("utf-8")


def number(value: float) -> str:
    """A value as a device prints it: ``72``, not ``72.0``; ``37.2`` stays."""
    return str(int(value)) if float(value).is_integer() else f"{value}"


def flag(value: float, low: float, high: float) -> str:
    """OBX-8 abnormal flag against the device's own reference range."""
    return "L" if value < low else "H" if value > high else "N"
