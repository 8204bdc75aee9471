"""HL7 v2 acknowledgements (v2.5 chapter 2.9): which ACKs a message gets, and their content.

Original mode (MSH-15 and MSH-16 both empty): one application ACK, AA / AE / AR.
Enhanced mode (either valued): an accept ACK (CA / CE / CR) when MSH-15 asks for one, then an application
ACK (AA / AE / AR) when MSH-16 asks for one and the message was accepted. AL always, NE never, ER only on
error, SU only on success; an empty field in enhanced mode counts as AL, so a sender is never left waiting.

A = accepted (and, for us, committed: an ACK is only built after the commit), E = content error (resending
the same message will not help), R = rejected (unsupported, or our own failure: the sender may retry).
"""
from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Literal

from transforms.errors import CODE_TEXT, Problem
from transforms.hl7.header import Header
from transforms.hl7.parser import Delimiters, escape
from transforms.hl7.timestamps import format_timestamp

Result = Literal["accepted", "error", "rejected"]
_ACCEPT_CODES = {"accepted": "CA", "error": "CE", "rejected": "CR"}
_APPLICATION_CODES = {"accepted": "AA", "error": "AE", "rejected": "AR"}
OUR_APPLICATION = "VitalsStream"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to a message, as far as its sender is concerned."""

    result: Result
    problems: Sequence[Problem] = ()

    @classmethod
    def from_problems(cls, problems: Sequence[Problem]) -> Outcome:
        if not problems:
            return cls("accepted")
        return cls("rejected" if any(p.rejects for p in problems) else "error", tuple(problems))


def _wanted(condition: str, ok: bool) -> bool:
    """MSH-15/16 (table 0155): AL always, NE never, ER on error, SU on success; empty counts as AL."""
    return {"NE": False, "ER": not ok, "SU": ok}.get(condition, True)


def acknowledgement_codes(header: Header, outcome: Outcome, original_mode: bool = False) -> list[str]:
    """The MSA-1 codes of the ACKs this message gets, in the order they are sent.

    ``original_mode`` (a route setting for senders that fill MSH-15/16 but cannot take enhanced answers)
    answers every message with one application ACK.
    """
    ok = outcome.result == "accepted"
    if original_mode or not header.enhanced_mode:
        return [_APPLICATION_CODES[outcome.result]]
    codes = []
    if _wanted(header.accept_ack, ok):
        codes.append(_ACCEPT_CODES[outcome.result])
    accepted = ok or not codes  # a negative accept ACK ends the exchange
    if accepted and _wanted(header.application_ack, ok):
        codes.append(_APPLICATION_CODES[outcome.result])
    return codes


def _new_control_id() -> str:
    """MSH-10 of an ACK: 80 random bits as 20 hex digits. It only has to be unique, not secret, so the
    interpreter's generator (seeded from the OS, reseeded after fork) does, without a system call per ACK."""
    return f"{random.getrandbits(80):020x}"


def acknowledgements(header: Header, delimiters: Delimiters, outcome: Outcome, *,
                     now: Callable[[], datetime] = lambda: datetime.now(UTC),
                     new_control_id: Callable[[], str] = _new_control_id,
                     original_mode: bool = False) -> list[str]:
    """The ACK messages (ER7 text, segments ended by CR) this message gets, in order; maybe none."""
    return [build_ack(header, delimiters, code, outcome.problems, now(), new_control_id())
            for code in acknowledgement_codes(header, outcome, original_mode)]


def build_ack(header: Header, d: Delimiters, code: str, problems: Sequence[Problem], moment: datetime,
              control_id: str) -> str:
    """One ACK: MSH with sender and receiver swapped, MSA, and an ERR per problem."""
    f, c = d.field, d.component
    message_type = f"ACK{c}{header.trigger_event}" + ("" if header.version == "2.3" else f"{c}ACK")
    msh = [f"MSH{f}{d.encoding_characters}", header.receiving_application or OUR_APPLICATION,
           header.receiving_facility, header.sending_application, header.sending_facility,
           format_timestamp(moment), "", message_type, control_id, header.processing_id or "P",
           header.version or "2.5"]
    if header.charset:
        msh += ["", "", "", "", "", header.charset]
    text = escape("; ".join(p.text for p in problems), d)
    legacy = _before(header.version, "2.5")
    msa = ["MSA", code, escape(header.control_id, d)]
    if problems and _before(header.version, "2.7"):
        msa.append(text)  # MSA-3, withdrawn in v2.7
    segments = [f.join(msh), f.join(msa)]
    segments += [_err(p, d, legacy) for p in problems]
    return "\r".join(segments) + "\r"


@lru_cache(maxsize=64)  # every ACK asks about its message's version, and senders use a handful
def _before(version: str, than: str) -> bool:
    def key(v: str) -> tuple[int, ...]:
        return tuple(int(x) for x in v.split(".") if x.isdigit())
    return bool(version) and key(version) < key(than)


def _err(problem: Problem, d: Delimiters, legacy: bool) -> str:
    """ERR: v2.3-2.4 use ERR-1 (location^code); v2.5+ use ERR-2 location, ERR-3 code, ERR-4 severity."""
    f, c, s = d.field, d.component, d.subcomponent
    loc = problem.location
    where = [loc.segment, str(loc.sequence), str(loc.field or ""), ""] if loc else ["", "", "", ""]
    words = escape(CODE_TEXT.get(problem.code, "Error"), d)
    if legacy:
        return f"ERR{f}" + c.join(where[:3] + [f"{problem.code}{s}{words}{s}HL70357"])
    if loc and loc.component:
        where = where[:3] + ["1", str(loc.component)]
    location = c.join(where).rstrip(c)
    return f.join(["ERR", "", location, f"{problem.code}{c}{words}{c}HL70357", "E", "", "", "",
                   escape(problem.text, d)])
