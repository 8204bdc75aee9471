"""What crosses the pipes between the engine and its store process: prepared messages out, receipts back.

Each pipe carries frames: a 4-byte big-endian length, then a pickle. Messages travel as plain tuples of
strings, numbers and times, pickled a batch at a time: pickle's generic path for the dataclasses themselves
(slots, frozen) costs ~36 us a message each way (measured, 8 readings); tuples cost a fraction of that
(the readings, NamedTuples, go as plain tuples too: no class reference to resolve for each). The
parse tree (``Prepared.message``) and the raw bytes stay behind: the store needs the decoded text, the
header, the delimiters, the readings and the ACKs. Routes travel by name; the engine sends a route object itself
once, the first time the store process needs it (see engine/group_commit.py).
"""
from __future__ import annotations

import pickle
import struct
from dataclasses import fields
from operator import attrgetter
from typing import Any

from engine.channel import Prepared, Receipt, Route, Submission
from transforms.hl7.header import Header
from transforms.hl7.parser import Delimiters
from transforms.vitals import VitalsReading

_HEADER = attrgetter(*(f.name for f in fields(Header)))
_DELIMITERS = attrgetter(*(f.name for f in fields(Delimiters)))
_RECEIPT = attrgetter(*(f.name for f in fields(Receipt)))

_LENGTH = struct.Struct("!I")

WirePrepared = tuple[Any, ...]
WireReceipt = tuple[Any, ...]


def prepared_to_wire(work: Prepared) -> WirePrepared:
    submission = work.submission
    return (work.route.name, work.text, work.peer, work.received_at, work.content_hash, work.encoding,
            _DELIMITERS(work.delimiters) if work.delimiters is not None else None,
            _HEADER(work.header) if work.header is not None else None,
            [tuple(reading) for reading in work.readings], work.problems, work.filtered,
            (submission.kind, submission.caller, submission.key) if submission is not None else None,
            work.reprocess_of, work.acks)


def prepared_from_wire(wire: WirePrepared, routes: dict[str, Route]) -> Prepared:
    (route_name, text, peer, received_at, content_hash, encoding, delimiters, header, readings, problems, filtered,
     submission, reprocess_of, acks) = wire
    route = routes[route_name]
    return Prepared(
        b"", route, peer, received_at, content_hash, text, encoding,
        delimiters=Delimiters(*delimiters) if delimiters is not None else None,
        header=Header(*header) if header is not None else None,
        readings=[VitalsReading._make(reading) for reading in readings], problems=problems, filtered=filtered,
        submission=Submission(b"", route, *submission, readings=[], peer=peer) if submission is not None else None,
        reprocess_of=reprocess_of, acks=acks)


def receipt_to_wire(receipt: Receipt) -> WireReceipt:
    return _RECEIPT(receipt)


def receipt_from_wire(wire: WireReceipt) -> Receipt:
    return Receipt(*wire)


def frame(message: object) -> bytes:
    """One message as a frame: its pickle, preceded by the pickle's length."""
    data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


class FrameReader:
    """Bytes in, as they arrive from a pipe; the messages they complete out."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[object]:
        buffer = self._buffer
        buffer += data
        messages, start = [], 0
        while len(buffer) - start >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(buffer, start)
            end = start + _LENGTH.size + length
            if len(buffer) < end:
                break
            messages.append(pickle.loads(buffer[start + _LENGTH.size:end]))
            start = end
        del buffer[:start]
        return messages
