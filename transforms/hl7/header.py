"""The MSH segment: who sent the message, what it is, and how it wants to be acknowledged."""
from __future__ import annotations

from dataclasses import dataclass

from transforms.errors import (
    APPLICATION_INTERNAL_ERROR,
    REQUIRED_FIELD_MISSING,
    UNSUPPORTED_EVENT_CODE,
    UNSUPPORTED_MESSAGE_TYPE,
    UNSUPPORTED_PROCESSING_ID,
    UNSUPPORTED_VERSION_ID,
    Location,
    Problem,
)
from transforms.hl7.parser import Message

SUPPORTED_VERSIONS = frozenset({"2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1",
                                "2.8.2"})
PROCESSING_IDS = frozenset({"P", "T", "D"})  # production, training, debugging


@dataclass(frozen=True, slots=True)
class Header:
    sender: str  # MSH-3.1, the sending application's namespace id
    facility: str  # MSH-4.1, the sending facility's namespace id
    sending_application: str  # MSH-3, raw (components kept, for swapping into the ACK)
    sending_facility: str  # MSH-4, raw
    receiving_application: str  # MSH-5, raw
    receiving_facility: str  # MSH-6, raw
    message_time: str  # MSH-7
    message_type: str  # MSH-9.1
    trigger_event: str  # MSH-9.2
    control_id: str  # MSH-10
    processing_id: str  # MSH-11.1
    version: str  # MSH-12.1
    accept_ack: str  # MSH-15: AL, NE, ER, SU or ''
    application_ack: str  # MSH-16
    charset: str  # MSH-18 as sent

    @property
    def is_ack(self) -> bool:
        return self.message_type == "ACK"

    @property
    def enhanced_mode(self) -> bool:
        """Enhanced acknowledgement mode: MSH-15 or MSH-16 valued (HL7 v2.5 2.9.3)."""
        return bool(self.accept_ack or self.application_ack)


def read_header(message: Message) -> Header:
    msh = message.msh
    return Header(
        sender=msh.get(3).strip(),
        facility=msh.get(4).strip(),
        sending_application=msh.field(3),
        sending_facility=msh.field(4),
        receiving_application=msh.field(5),
        receiving_facility=msh.field(6),
        message_time=msh.get(7),
        message_type=msh.get(9, 1).strip().upper(),
        trigger_event=msh.get(9, 2).strip().upper(),
        control_id=msh.get(10).strip(),
        processing_id=msh.get(11).strip().upper(),
        version=msh.get(12).strip(),
        accept_ack=msh.get(15).strip().upper(),
        application_ack=msh.get(16).strip().upper(),
        charset=msh.field(18),
    )


def unsupported(header: Header, message_types: frozenset[tuple[str, str]]) -> list[Problem]:
    """What in MSH stops this receiver from taking the message (0357 codes 101 and 200-203)."""
    problems = []
    if not header.control_id:
        problems.append(Problem(REQUIRED_FIELD_MISSING, "MSH-10 message control id is empty",
                                Location("MSH", 1, 10)))
    if not header.message_type:
        problems.append(Problem(REQUIRED_FIELD_MISSING, "MSH-9 message type is empty", Location("MSH", 1, 9)))
    elif header.message_type not in {t for t, _ in message_types}:
        problems.append(Problem(UNSUPPORTED_MESSAGE_TYPE, f"message type {header.message_type} is not accepted",
                                Location("MSH", 1, 9, 1)))
    elif (header.message_type, header.trigger_event) not in message_types:
        problems.append(Problem(UNSUPPORTED_EVENT_CODE,
                                f"event {header.trigger_event or '(empty)'} is not accepted "
                                f"for {header.message_type}", Location("MSH", 1, 9, 2)))
    if header.processing_id not in PROCESSING_IDS:
        problems.append(Problem(UNSUPPORTED_PROCESSING_ID,
                                f"processing id {header.processing_id or '(empty)'} is not P, T or D",
                                Location("MSH", 1, 11)))
    if header.version not in SUPPORTED_VERSIONS:
        problems.append(Problem(UNSUPPORTED_VERSION_ID,
                                f"version {header.version or '(empty)'} is not one of 2.3 to 2.8",
                                Location("MSH", 1, 12)))
    return problems


def not_from(header: Header, applications: frozenset[str], facilities: frozenset[str]) -> Problem | None:
    """Why a route's sender filters turn this message away (MSH-3.1 / MSH-4.1; an empty filter takes any)."""
    if applications and header.sender not in applications:
        return Problem(APPLICATION_INTERNAL_ERROR, f"sending application {header.sender or '(empty)'} is not "
                       "accepted on this route", Location("MSH", 1, 3, 1))
    if facilities and header.facility not in facilities:
        return Problem(APPLICATION_INTERNAL_ERROR, f"sending facility {header.facility or '(empty)'} is not "
                       "accepted on this route", Location("MSH", 1, 4, 1))
    return None
