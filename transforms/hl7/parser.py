"""A small, tolerant HL7 v2 ER7 parser for the hot path.

An HL7 v2 message is a list of segments, one per line. The first, MSH, declares the delimiters: the
character right after "MSH" separates fields, and MSH-2 lists the component, repetition, escape and
subcomponent characters (usually ``^~\\&``). A field may repeat (``~``), a repetition has components
(``^``), and a component has subcomponents (``&``). Text containing a delimiter is escaped (``\\F\\``).

Real senders end segments with CR (the standard), LF or CRLF; all three are accepted. Fields are kept as
raw strings and split only when asked for, which is what makes this parser fast (see ARCHITECTURE.md).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from transforms.errors import (
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE_ERROR,
    Location,
    MessageProblems,
    Problem,
)

_SEGMENT_TERMINATOR = re.compile(r"\r\n|\r|\n")
_FRAMING = "\x0b\x1c"


@dataclass(frozen=True, slots=True)
class Delimiters:
    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    @property
    def encoding_characters(self) -> str:
        """MSH-2 as it is written."""
        return self.component + self.repetition + self.escape + self.subcomponent


class Segment:
    """One segment: its id and raw fields, numbered as HL7 numbers them (``seg.field(3)`` is XXX-3)."""

    __slots__ = ("_delimiters", "_fields", "_msh", "name", "sequence")

    def __init__(self, fields: list[str], delimiters: Delimiters, sequence: int):
        self.name = fields[0]
        self.sequence = sequence  # 1 for the first segment with this id in the message, 2 for the next ...
        self._msh = self.name == "MSH"
        # MSH-1 is the field separator itself: with it put in place, _fields[n] is field n in every segment.
        self._fields = [fields[0], delimiters.field, *fields[1:]] if self._msh else fields
        self._delimiters = delimiters

    def field(self, number: int) -> str:
        """The raw (still escaped) text of field ``number``; '' when absent."""
        fields = self._fields
        if number < len(fields):
            return fields[number] if number > 0 else self._unnumbered(number)
        return ""

    def _unnumbered(self, number: int) -> str:
        """Numbers below 1 are no HL7 field: they index the fields as split (the segment id is number 0)."""
        if not self._msh:
            return self._fields[number]
        as_split = [self._fields[0], *self._fields[2:]]
        return as_split[number - 1]

    def repetitions(self, number: int) -> list[str]:
        raw = self.field(number)
        return raw.split(self._delimiters.repetition) if raw else []

    def get(self, number: int, component: int = 1, repetition: int = 1, subcomponent: int = 1) -> str:
        """The unescaped text of one field/component/subcomponent, '' when absent."""
        # The hot path of every transform: one call, no helper calls, a separator is split only when present.
        fields = self._fields
        if number >= len(fields):
            return ""
        raw = fields[number] if number > 0 else self._unnumbered(number)
        if not raw:
            return ""
        if number <= 2 and self._msh:
            return raw
        d = self._delimiters
        separator = d.repetition
        if separator in raw:
            parts = raw.split(separator)
            raw = parts[repetition - 1] if repetition <= len(parts) else ""
        elif repetition > 1:
            return ""
        separator = d.component
        if separator in raw:
            parts = raw.split(separator)
            raw = parts[component - 1] if component <= len(parts) else ""
        elif component != 1:
            return ""
        separator = d.subcomponent
        if separator in raw:
            parts = raw.split(separator)
            raw = parts[subcomponent - 1] if subcomponent <= len(parts) else ""
        elif subcomponent != 1:
            return ""
        return unescape(raw, d) if d.escape in raw else raw

    def components(self, number: int, repetition: int = 1) -> list[str]:
        """All components of one repetition of a field, unescaped (subcomponents left joined)."""
        d = self._delimiters
        raw = self.field(number)
        if d.repetition in raw:
            parts = raw.split(d.repetition)
            raw = parts[repetition - 1] if repetition <= len(parts) else ""
        escape = d.escape
        if escape not in raw:
            return raw.split(d.component)
        return [unescape(c, d) if escape in c else c for c in raw.split(d.component)]

    def location(self, field: int | None = None, component: int | None = None) -> Location:
        return Location(self.name, self.sequence, field, component)

    def __len__(self) -> int:
        """Number of the last field present (HL7 numbering)."""
        return len(self._fields) - 1

    def __repr__(self) -> str:
        return f"<Segment {self.name}[{self.sequence}]>"


class Message:
    """A parsed message: its delimiters and segments in order."""

    __slots__ = ("delimiters", "segments")

    def __init__(self, delimiters: Delimiters, segments: list[Segment]):
        self.delimiters = delimiters
        self.segments = segments

    @property
    def msh(self) -> Segment:
        return self.segments[0]

    def first(self, name: str) -> Segment | None:
        for segment in self.segments:
            if segment.name == name:
                return segment
        return None


def parse(text: str) -> Message:
    """Split ``text`` into segments and fields using the delimiters its MSH declares.

    Raises MessageProblems (0357 code 100) when the message does not start with a usable MSH segment.
    """
    text = text.strip(_FRAMING + "\r\n\t ")
    split = text.split("\r") if "\n" not in text else _SEGMENT_TERMINATOR.split(text)  # CR alone: the usual case
    lines = [line for line in split if line.strip()]
    if not lines or not lines[0].startswith("MSH") or len(lines[0]) < 8:
        raise MessageProblems([Problem(SEGMENT_SEQUENCE_ERROR, "the message must start with an MSH segment",
                                       Location("MSH"))])
    delimiters = _delimiters(lines[0])
    counts: dict[str, int] = {}
    segments = []
    separator = delimiters.field
    for line in lines:
        fields = line.split(separator)
        name = fields[0] = fields[0].strip()
        sequence = counts[name] = counts.get(name, 0) + 1
        segments.append(Segment(fields, delimiters, sequence))
    return Message(delimiters, segments)


def _delimiters(msh: str) -> Delimiters:
    field = msh[3]
    encoding = msh[4:].split(field, 1)[0]
    if len(encoding) < 4 or field in encoding or field.isalnum():
        raise MessageProblems([Problem(REQUIRED_FIELD_MISSING,
                                       "MSH-1 and MSH-2 must declare the field separator and four encoding "
                                       "characters", Location("MSH", 1, 2))])
    # MSH-2 in v2.7+ may carry a fifth character (truncation, usually '#'); it needs no special handling.
    return Delimiters(field, encoding[0], encoding[1], encoding[2], encoding[3])


_NAMED_ESCAPES = {"F": "field", "S": "component", "T": "subcomponent", "R": "repetition", "E": "escape"}


def unescape(text: str, delimiters: Delimiters) -> str:
    r"""Resolve HL7 escape sequences: \F\ \S\ \T\ \R\ \E\, \Xhh..\ (hex), \.br\ (line break).

    Formatting and character-set switches (\H\ \N\ \Cxxyy\ \Mxxyyzz\ and other \.xx\ commands) carry no
    value and are dropped. An escape character without its closing partner is kept as it is.
    """
    esc = delimiters.escape
    out: list[str] = []
    i = 0
    while True:
        start = text.find(esc, i)
        if start < 0:
            out.append(text[i:])
            return "".join(out)
        end = text.find(esc, start + 1)
        if end < 0:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:start])
        out.append(_escape_value(text[start + 1:end], delimiters))
        i = end + 1


def _escape_value(sequence: str, delimiters: Delimiters) -> str:
    if sequence in _NAMED_ESCAPES:
        return getattr(delimiters, _NAMED_ESCAPES[sequence])
    if sequence[:1] == "X" and len(sequence) % 2 == 1:
        try:
            return bytes.fromhex(sequence[1:]).decode("latin-1")
        except ValueError:
            return ""
    if sequence == ".br":
        return "\n"
    return ""


def escape(text: str, delimiters: Delimiters) -> str:
    """Text made safe to place in a field: delimiters written as escape sequences."""
    d = delimiters
    if not (d.escape in text or d.field in text or d.component in text or d.subcomponent in text
            or d.repetition in text or "\r" in text or "\n" in text):
        return text  # the usual control id or problem text: nothing to escape
    text = text.replace(d.escape, f"{d.escape}E{d.escape}")
    for char, name in ((d.field, "F"), (d.component, "S"), (d.subcomponent, "T"), (d.repetition, "R")):
        text = text.replace(char, f"{d.escape}{name}{d.escape}")
    return text.replace("\r", " ").replace("\n", " ")
