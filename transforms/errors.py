"""The error tree for message content, mapped once to answers (HL7 ACK codes, SOAP faults, HTTP).

HL7 table 0357 gives every error a code. Content errors (1xx, and 205 duplicate key) mean the sender must
fix the message: resending it unchanged will not help, hence AE. Rejections (200-203 unsupported, 207 our
own failure) are not about the content: the sender may try again later or elsewhere, hence AR.
"""
from __future__ import annotations

from dataclasses import dataclass

# HL7 table 0357, message error condition codes.
SEGMENT_SEQUENCE_ERROR = 100
REQUIRED_FIELD_MISSING = 101
DATA_TYPE_ERROR = 102
TABLE_VALUE_NOT_FOUND = 103
UNSUPPORTED_MESSAGE_TYPE = 200
UNSUPPORTED_EVENT_CODE = 201
UNSUPPORTED_PROCESSING_ID = 202
UNSUPPORTED_VERSION_ID = 203
DUPLICATE_KEY = 205
APPLICATION_INTERNAL_ERROR = 207

# Codes that reject the message (AR/CR: not about its content, the sender may retry later); every other
# code is a content error (AE/CE). 205 (duplicate key) is content: the same key with different content.
REJECTING_CODES = frozenset({UNSUPPORTED_MESSAGE_TYPE, UNSUPPORTED_EVENT_CODE, UNSUPPORTED_PROCESSING_ID,
                             UNSUPPORTED_VERSION_ID, APPLICATION_INTERNAL_ERROR})

CODE_TEXT = {
    SEGMENT_SEQUENCE_ERROR: "Segment sequence error",
    REQUIRED_FIELD_MISSING: "Required field missing",
    DATA_TYPE_ERROR: "Data type error",
    TABLE_VALUE_NOT_FOUND: "Table value not found",
    UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    UNSUPPORTED_EVENT_CODE: "Unsupported event code",
    UNSUPPORTED_PROCESSING_ID: "Unsupported processing id",
    UNSUPPORTED_VERSION_ID: "Unsupported version id",
    DUPLICATE_KEY: "Duplicate key identifier",
    APPLICATION_INTERNAL_ERROR: "Application internal error",
}


@dataclass(frozen=True, slots=True)
class Location:
    """Where in the message: segment id, its occurrence (1-based), field, component (HL7 ERL)."""

    segment: str
    sequence: int = 1
    field: int | None = None
    component: int | None = None

    def __str__(self) -> str:
        text = f"{self.segment}[{self.sequence}]"
        if self.field is not None:
            text += f"-{self.field}"
            if self.component is not None:
                text += f".{self.component}"
        return text


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a message: the 0357 code, plain words, and where."""

    code: int
    text: str
    location: Location | None = None

    @property
    def rejects(self) -> bool:
        """True when this problem rejects the message (AR) rather than faulting its content (AE)."""
        return self.code in REJECTING_CODES

    def __str__(self) -> str:
        where = f" at {self.location}" if self.location else ""
        return f"{self.code} {CODE_TEXT.get(self.code, 'Error')}{where}: {self.text}"


class VitalsError(Exception):
    """Base of every error this engine turns into an answer for the sender."""


class MessageProblems(VitalsError):
    """The message cannot be taken as it is; carries every problem found, not only the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))

    @property
    def rejects(self) -> bool:
        return any(p.rejects for p in self.problems)
