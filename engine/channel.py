"""The channel path every message follows: receive, transform, store (one transaction), answer.

1. receive: decode the bytes (MSH-18), read MSH; an ACK is never acknowledged.
2. transform: pure functions turn the message into canonical readings, or a list of problems.
3. store: ONE transaction holds the duplicate check, the message row (with the ACK it will get), the
   readings, and alert evaluation in the database.
4. answer: the ACKs are handed back only after that transaction committed. If the store fails, the
   sender gets AR with ERR 207 and nothing is kept: it may resend.

Every adapter (file ingest, MLLP, SOAP PCD-01) calls ``Channel.dispatch``; none of them commits.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from adapters.sql_store import SqlStore, StoreTransaction, utc_naive
from transforms.errors import APPLICATION_INTERNAL_ERROR, DUPLICATE_KEY, Location, MessageProblems, Problem
from transforms.hl7.ack import Outcome, acknowledgements
from transforms.hl7.charset import decode_with_codec
from transforms.hl7.conformance import conformance_problems
from transforms.hl7.header import Header, not_from, read_header
from transforms.hl7.parser import Message, parse
from transforms.oru import ORU_R01, OruMapping, transform
from transforms.vitals import VitalsReading

log = logging.getLogger("vitalsstream.channel")

ACK_SEPARATOR = "\n"  # between the ACKs of one message in messages.ack (ACK segments end with CR)


@dataclass(frozen=True)
class Route:
    """What a route decides for the channel path (routes/*.yaml fill this in)."""

    name: str = "default"
    oru: OruMapping = field(default_factory=OruMapping)
    message_types: frozenset[tuple[str, str]] = ORU_R01  # accepted (MSH-9.1, MSH-9.2)
    sending_applications: frozenset[str] = frozenset()  # accepted MSH-3.1; empty: any
    sending_facilities: frozenset[str] = frozenset()  # accepted MSH-4.1; empty: any
    strict: bool = False  # conformance validation through hl7apy, on top of our tolerant parse
    log_phi: bool = False  # may message content appear in logs
    original_mode: bool = False  # always one application ACK (AA/AE/AR), whatever MSH-15/16 ask


@dataclass(frozen=True)
class Inbound:
    """One message as an adapter hands it to the channel."""

    raw: bytes
    route: Route
    peer: str = ""
    received_at: datetime | None = None  # when the last byte arrived; now when not given


@dataclass(frozen=True)
class Receipt:
    """What became of one message: its row, status, the ACKs to send (maybe none), counts."""

    message_id: int | None
    status: str
    acks: tuple[str, ...]
    readings: int = 0
    alerts: int = 0
    duplicate: bool = False
    error: str = ""
    encoding: str = "ascii"  # the message's codec: encode the ACKs with it

    def ack_bytes(self) -> list[bytes]:
        return [ack.encode(self.encoding, errors="replace") for ack in self.acks]

    @property
    def ack_codes(self) -> list[str]:
        return [ack.split("\rMSA", 1)[1][1:3] for ack in self.acks if "\rMSA" in ack]


@dataclass
class _Work:
    """One message on its way through the channel."""

    raw: bytes
    route: Route
    peer: str
    received_at: datetime
    content_hash: str
    text: str
    encoding: str  # the codec that decoded the bytes; answers are encoded with it
    message: Message | None = None
    header: Header | None = None
    readings: list[VitalsReading] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    filtered: bool = False  # turned away by the route's sender filters


class Channel:
    def __init__(self, store: SqlStore, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.store = store
        self.clock = clock

    def dispatch(self, raw: bytes, route: Route, peer: str = "") -> Receipt:
        """Take one message through the whole path; the returned ACKs are safe to send (committed)."""
        return self.dispatch_batch([Inbound(raw, route, peer)])[0]

    def dispatch_batch(self, batch: Sequence[Inbound]) -> list[Receipt]:
        """Several messages in ONE transaction (group commit), each answered as if it had been alone.

        If the shared transaction fails, each message is tried again in a transaction of its own, so one
        bad message (or a race on its duplicate key) only costs its own answer.
        """
        works = [self._prepare(item) for item in batch]
        if len(works) > 1:
            try:
                with self.store.transaction() as tx:
                    return [self._record(tx, work) for work in works]
            except (SQLAlchemyError, OSError) as error:
                log.warning("shared transaction failed, storing one by one",
                            extra={"messages": len(works), "error": type(error).__name__})
        return [self._store_alone(work) for work in works]

    def _prepare(self, item: Inbound) -> _Work:
        work = self._receive(item)
        if work.header is not None and not work.header.is_ack:
            self._transform(work)
        return work

    def _store_alone(self, work: _Work) -> Receipt:
        for attempt in range(2):
            try:
                with self.store.transaction() as tx:
                    return self._record(tx, work)
            except IntegrityError:
                if attempt == 0:
                    continue  # a concurrent copy committed first: look again, it is a duplicate now
                return self._unavailable(work, "IntegrityError")
            except (SQLAlchemyError, OSError) as error:
                return self._unavailable(work, type(error).__name__)
        raise AssertionError("unreachable")

    def _receive(self, item: Inbound) -> _Work:
        text, encoding = decode_with_codec(item.raw)
        work = _Work(item.raw, item.route, item.peer, item.received_at or self.clock(),
                     hashlib.sha256(item.raw).hexdigest(), text, encoding)
        try:
            work.message = parse(work.text)
            work.header = read_header(work.message)
        except MessageProblems as problems:
            work.problems = list(problems.problems)
        return work

    def _transform(self, work: _Work) -> None:
        assert work.message is not None and work.header is not None
        route = work.route
        refused = not_from(work.header, route.sending_applications, route.sending_facilities)
        if refused is not None:
            work.problems, work.filtered = [refused], True
            return
        if route.strict:
            work.problems = conformance_problems(work.text)
            if work.problems:
                return
        try:
            work.readings = transform(work.message, work.header, route.oru, route.message_types)
        except MessageProblems as problems:
            work.problems = list(problems.problems)

    def _record(self, tx: StoreTransaction, work: _Work) -> Receipt:
        header = work.header
        if header is None or header.is_ack:
            reason = "; ".join(map(str, work.problems)) or "an acknowledgement is never acknowledged"
            status = "ERROR" if header is None else "FILTERED"
            message_id = tx.add_message(**self._row(work, status, (), reason))
            return Receipt(message_id, status, (), error=reason, encoding=work.encoding)
        earlier = tx.messages_with_key(header.sending_application, header.sending_facility, header.control_id)
        resent = next((m for m in reversed(earlier) if m.content_hash == work.content_hash), None)
        if resent is not None:
            acks = tuple(resent.ack.split(ACK_SEPARATOR)) if resent.ack else ()
            return Receipt(resent.id, resent.status, acks, duplicate=True, encoding=work.encoding)
        original = next((m for m in earlier if m.status == "STORED" and m.duplicate_of is None), None)
        if original is not None:
            return self._conflict(tx, work, original.id)
        return self._accept(tx, work)

    def _accept(self, tx: StoreTransaction, work: _Work) -> Receipt:
        assert work.header is not None and work.message is not None
        outcome = Outcome.from_problems(work.problems)
        acks = tuple(self._acks(work, outcome))
        status = "FILTERED" if work.filtered else "STORED" if outcome.result == "accepted" else "ERROR"
        error = "; ".join(map(str, work.problems))
        message_id = tx.add_message(**self._row(work, status, acks, error))
        alerts = 0
        if status == "STORED":
            tx.add_readings(message_id, work.readings, utc_naive(self.clock()))
            alerts = tx.evaluate_alerts(message_id)
        return Receipt(message_id, status, acks, len(work.readings) if status == "STORED" else 0, alerts,
                       error=error, encoding=work.encoding)

    def _conflict(self, tx: StoreTransaction, work: _Work, original_id: int) -> Receipt:
        """Same sender, facility and MSH-10 as an accepted message, other content: AE, kept for audit."""
        assert work.header is not None and work.message is not None
        problem = Problem(DUPLICATE_KEY, f"control id {work.header.control_id} was already used for another "
                          f"message (id {original_id}) with different content", Location("MSH", 1, 10))
        acks = tuple(self._acks(work, Outcome("error", (problem,))))
        row = self._row(work, "ERROR", acks, str(problem))
        message_id = tx.add_message(**row, duplicate_of=original_id)
        log.warning("duplicate control id with different content", extra={"message_id": message_id,
                                                                            "original_id": original_id})
        return Receipt(message_id, "ERROR", acks, error=str(problem), encoding=work.encoding)

    def _unavailable(self, work: _Work, error: str) -> Receipt:
        """The store failed: AR with ERR 207, nothing kept (the sender may resend)."""
        log.error("store failed, answering AR 207", extra={"route": work.route.name, "error": error})
        problem = Problem(APPLICATION_INTERNAL_ERROR, "the message could not be stored; send it again later")
        if work.header is None or work.message is None or work.header.is_ack:
            return Receipt(None, "ERROR", (), error=str(problem), encoding=work.encoding)
        acks = tuple(self._acks(work, Outcome("rejected", (problem,))))
        return Receipt(None, "ERROR", acks, error=str(problem), encoding=work.encoding)

    def _acks(self, work: _Work, outcome: Outcome) -> tuple[str, ...]:
        assert work.header is not None and work.message is not None
        return tuple(acknowledgements(work.header, work.message.delimiters, outcome, now=self.clock,
                                      original_mode=work.route.original_mode))

    def _row(self, work: _Work, status: str, acks: tuple[str, ...], error: str) -> dict[str, object]:
        header = work.header
        codes = Receipt(None, status, acks).ack_codes
        return {
            "route": work.route.name,
            "control_id": _clip(header.control_id if header else "", 200),
            "sending_application": _clip(header.sending_application if header else "", 227),
            "sending_facility": _clip(header.sending_facility if header else "", 227),
            "message_type": _clip(f"{header.message_type}^{header.trigger_event}" if header else "", 20),
            "version": _clip(header.version if header else "", 10),
            "content_hash": work.content_hash,
            "raw": work.text,
            "peer": work.peer,
            "status": status,
            "ack_code": codes[-1] if codes else None,
            "ack": ACK_SEPARATOR.join(acks) or None,
            "error": error or None,
            "reading_count": len(work.readings) if status == "STORED" else 0,
            "received_at": utc_naive(work.received_at),
            "processed_at": utc_naive(self.clock()),
        }


def _clip(value: str, length: int) -> str:
    """Header values as sent, cut to their column (a hostile MSH must not turn into a store failure)."""
    return value[:length]
