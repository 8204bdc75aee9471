"""The channel path every message follows: receive, transform, store (one transaction), answer.

1. receive: decode the bytes (MSH-18), read MSH; an ACK is never acknowledged.
2. transform: pure functions turn the message into canonical readings, or a list of problems.
3. store: ONE transaction holds the duplicate check, the message row (with the ACK it will get), the
   readings, alert evaluation in the database, and the outbox rows of the route's outbox destinations
   (engine/outbox_rows.py): what is stored is never forgotten by the EHR or the people on call.
4. answer: the ACKs are handed back only after that transaction committed. If the store fails, the
   sender gets AR with ERR 207 and nothing is kept: it may resend.

Adapters hand messages to ``Channel.dispatch`` (file ingest) or, through engine.group_commit, to
``prepare`` and ``store_batch`` (MLLP); none of them commits.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from adapters.sql_store import EarlierMessage, MessageKey, SqlStore, StoreTransaction, utc_naive
from engine.outbox_rows import OutboxTarget, alert_row, observation_rows, takes_alert
from transforms.errors import APPLICATION_INTERNAL_ERROR, DUPLICATE_KEY, Location, MessageProblems, Problem
from transforms.hl7.ack import Outcome, acknowledgements
from transforms.hl7.charset import decode_with_codec
from transforms.hl7.conformance import conformance_problems
from transforms.hl7.header import Header, not_from, read_header
from transforms.hl7.parser import Delimiters, Message, parse
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
    outbox: tuple[OutboxTarget, ...] = ()  # destinations beyond the database: rows written with the message


@dataclass(frozen=True)
class Inbound:
    """One message as an adapter hands it to the channel."""

    raw: bytes
    route: Route
    peer: str = ""
    received_at: datetime | None = None  # when the last byte arrived; now when not given
    reprocess_of: int | None = None  # an operator sends a stored message's raw content again


@dataclass(frozen=True)
class Submission:
    """Readings a caller submitted outside HL7 (REST JSON, SOAP), mapped already by a pure transform.

    ``key`` is the caller's idempotency key (or a fresh one): the same key with the same body is a resend
    (the original answer, nothing stored); with another body it is refused and kept for audit.
    """

    raw: bytes  # the body as received, kept in messages.raw
    route: Route
    kind: str  # REST, SOAP: messages.sending_application
    caller: str  # the device (REST) or calling system (SOAP): messages.sending_facility
    key: str  # messages.control_id
    readings: list[VitalsReading]
    peer: str = ""


@dataclass(frozen=True)
class Receipt:
    """What became of one message: its row, status, the ACKs to send (maybe none), counts."""

    message_id: int | None
    status: str
    acks: tuple[str, ...]
    readings: int = 0
    alerts: int = 0  # alerts raised or updated by the transaction that stored it (a group commit's, all told)
    duplicate: bool = False
    error: str = ""
    encoding: str = "ascii"  # the message's codec: encode the ACKs with it

    def ack_bytes(self) -> list[bytes]:
        return [ack.encode(self.encoding, errors="replace") for ack in self.acks]

    @property
    def ack_codes(self) -> list[str]:
        return ack_codes(self.acks)


def ack_codes(acks: Sequence[str]) -> list[str]:
    """MSA-1 of each ACK we built (our ACKs put MSA right after MSH)."""
    return [ack.split("\rMSA", 1)[1][1:3] for ack in acks if "\rMSA" in ack]


@dataclass
class Prepared:
    """One message received and transformed (pure work, no I/O), waiting to be stored."""

    raw: bytes
    route: Route
    peer: str
    received_at: datetime
    content_hash: str
    text: str
    encoding: str  # the codec that decoded the bytes; answers are encoded with it
    message: Message | None = None  # the parse, for the transform; never leaves the process that prepared it
    delimiters: Delimiters | None = None  # the message's own, for its ACKs
    header: Header | None = None
    readings: list[VitalsReading] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    filtered: bool = False  # turned away by the route's sender filters
    submission: Submission | None = None  # set for REST and SOAP submissions (no HL7, no ACKs)
    reprocess_of: int | None = None
    acks: tuple[str, ...] = ()  # what the message is answered unless its duplicate key says otherwise

    @cached_property
    def key(self) -> MessageKey | None:
        """The duplicate key as stored (MSH-3, MSH-4, MSH-10, or kind, caller, idempotency key); None for
        what is never deduplicated (no MSH, an ACK)."""
        if self.submission is not None:
            s = self.submission
            return _clip(s.kind, 227), _clip(s.caller, 227), _clip(s.key, 200)
        if self.header is None or self.header.is_ack:
            return None
        h = self.header
        return _clip(h.sending_application, 227), _clip(h.sending_facility, 227), _clip(h.control_id, 200)


@dataclass
class _Plan:
    """What the transaction does with one message, and what its sender is told."""

    work: Prepared
    status: str
    acks: tuple[str, ...] = ()
    error: str = ""
    duplicate_of: int | None = None
    message_id: int | None = None
    resent: bool = False  # an exact resend: nothing is written

    def receipt(self, alerts: int) -> Receipt:
        stored = self.status == "STORED" and not self.resent
        return Receipt(self.message_id, self.status, self.acks, len(self.work.readings) if stored else 0,
                       alerts if stored else 0, duplicate=self.resent, error=self.error,
                       encoding=self.work.encoding)


class Channel:
    def __init__(self, store: SqlStore, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 outbox_written: Callable[[], None] = lambda: None):
        """``outbox_written`` is called after a commit that wrote outbox rows (it wakes the outbox worker)."""
        self.store = store
        self.clock = clock
        self.outbox_written = outbox_written

    def dispatch(self, raw: bytes, route: Route, peer: str = "") -> Receipt:
        """Take one message through the whole path; the returned ACKs are safe to send (committed)."""
        return self.dispatch_batch([Inbound(raw, route, peer)])[0]

    def dispatch_batch(self, batch: Sequence[Inbound]) -> list[Receipt]:
        """Several messages in ONE transaction (group commit), each answered as if it had been alone.

        If the shared transaction fails, each message is tried again in a transaction of its own, so one
        bad message (or a race on its duplicate key) only costs its own answer.
        """
        return self.store_batch([self.prepare(item) for item in batch])

    def store_batch(self, works: Sequence[Prepared]) -> list[Receipt]:
        """Store prepared messages in ONE transaction; see dispatch_batch."""
        if len(works) > 1:
            try:
                with self.store.transaction() as tx:
                    receipts = [receipt for chunk in _chunks_with_unique_keys(list(works))
                                for receipt in self._record(tx, chunk)]
                if tx.outbox_rows:
                    self.outbox_written()
                return receipts
            except (SQLAlchemyError, OSError) as error:
                log.warning("shared transaction failed, storing one by one",
                            extra={"messages": len(works), "error": type(error).__name__})
        return [self._store_alone(work) for work in works]

    def prepare(self, item: Inbound | Submission) -> Prepared:
        """Decode, parse and transform: CPU work without I/O, done before the message queues for the store."""
        if isinstance(item, Submission):
            return Prepared(item.raw, item.route, item.peer, self.clock(), hashlib.sha256(item.raw).hexdigest(),
                            item.raw.decode("utf-8", "replace"), "utf-8", readings=list(item.readings),
                            submission=item)
        work = self._receive(item)
        if work.header is not None and not work.header.is_ack:
            self._transform(work)
            work.acks = self._acks(work, Outcome.from_problems(work.problems))
        return work

    def _store_alone(self, work: Prepared) -> Receipt:
        for attempt in range(2):
            try:
                with self.store.transaction() as tx:
                    receipt = self._record(tx, [work])[0]
                if tx.outbox_rows:
                    self.outbox_written()
                return receipt
            except IntegrityError:
                if attempt == 0:
                    continue  # a concurrent copy committed first: look again, it is a duplicate now
                return self._unavailable(work, "IntegrityError")
            except (SQLAlchemyError, OSError) as error:
                return self._unavailable(work, type(error).__name__)
        raise AssertionError("unreachable")

    def _receive(self, item: Inbound) -> Prepared:
        text, encoding = decode_with_codec(item.raw)
        work = Prepared(item.raw, item.route, item.peer, item.received_at or self.clock(),
                        hashlib.sha256(item.raw).hexdigest(), text, encoding, reprocess_of=item.reprocess_of)
        try:
            work.message = parse(work.text)
            work.delimiters = work.message.delimiters
            work.header = read_header(work.message)
        except MessageProblems as problems:
            work.problems = list(problems.problems)
        return work

    def _transform(self, work: Prepared) -> None:
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

    def _record(self, tx: StoreTransaction, works: list[Prepared]) -> list[Receipt]:
        """Store messages whose duplicate keys differ, with a few statements for all of them."""
        earlier = tx.messages_with_keys(w.key for w in works if w.key)
        plans = [self._plan(work, earlier.get(work.key, []) if work.key else []) for work in works]
        new = [plan for plan in plans if not plan.resent]
        readings = [(position, r) for position, p in enumerate(new) if p.status == "STORED" for r in p.work.readings]
        ids, alerts = tx.store_messages([self._row(p) for p in new], readings, utc_naive(self.clock()))
        for plan, message_id in zip(new, ids, strict=True):
            plan.message_id = message_id
        stored = [plan for plan in new if plan.status == "STORED"]
        self._enqueue(tx, [p for p in stored if p.work.route.outbox and p.work.readings], alerts)
        for plan in new:
            _log_outcome(plan)
        return [plan.receipt(alerts) for plan in plans]

    def _enqueue(self, tx: StoreTransaction, stored: list[_Plan], alerts: int) -> None:
        """Outbox rows for what this transaction stored and raised, for the routes' outbox destinations."""
        if not stored:
            return
        now = utc_naive(self.clock())
        rows = [row for p in stored if p.message_id
                for row in observation_rows(p.work.route.outbox, p.work.route.name, p.message_id, p.work.readings, now)]
        routes = {p.message_id: p.work.route for p in stored if any(t.alerts for t in p.work.route.outbox)}
        for alert in tx.raised_alerts(list(routes)) if alerts and routes else ():
            route = routes[alert.message_id]
            for target in route.outbox:
                if takes_alert(target, alert.severity):
                    suppressed = target.suppress_seconds > 0 and tx.notified_since(
                        target.name, alert, now - timedelta(seconds=target.suppress_seconds))
                    rows.append(alert_row(target.name, "alert", alert, route.name, alert.message_id, now, suppressed))
        tx.add_outbox(rows)

    def _plan(self, work: Prepared, earlier: list[EarlierMessage]) -> _Plan:
        """Decide what becomes of one message: its status, its ACKs, whether a row is written."""
        if work.submission is not None:
            return self._plan_submission(work, earlier)
        header = work.header
        if header is None or header.is_ack:
            reason = "; ".join(map(str, work.problems)) or "an acknowledgement is never acknowledged"
            return _Plan(work, "ERROR" if header is None else "FILTERED", error=reason)
        # An exact resend gets the original answer and stores nothing, unless that answer was AR: a refusal
        # for reasons other than content (sender not accepted, version, our failure) invites a retry, which
        # is looked at again (the route may have been fixed meanwhile).
        resent = next((m for m in reversed(earlier)
                       if m.content_hash == work.content_hash and not _refused(m)), None)
        if resent is not None and work.reprocess_of is None:
            acks = tuple(resent.ack.split(ACK_SEPARATOR)) if resent.ack else ()
            return _Plan(work, resent.status, acks, message_id=resent.id, resent=True)
        original = next((m for m in earlier if m.status == "STORED" and m.duplicate_of is None), None)
        if original is not None:  # same key, other content: AE, kept for audit
            problem = Problem(DUPLICATE_KEY, f"control id {header.control_id} was already used for another "
                              f"message (id {original.id}) with different content", Location("MSH", 1, 10))
            return _Plan(work, "ERROR", self._acks(work, Outcome("error", (problem,))), str(problem),
                         duplicate_of=original.id)
        status = "FILTERED" if work.filtered else "ERROR" if work.problems else "STORED"
        return _Plan(work, status, work.acks, "; ".join(map(str, work.problems)))

    def _plan_submission(self, work: Prepared, earlier: list[EarlierMessage]) -> _Plan:
        """A submission: stored, or an exact resend (its first outcome again), or a reused key (refused)."""
        resent = next((m for m in reversed(earlier) if m.content_hash == work.content_hash), None)
        if resent is not None:
            return _Plan(work, resent.status, message_id=resent.id, resent=True)
        original = next((m for m in earlier if m.status == "STORED" and m.duplicate_of is None), None)
        if original is not None:
            return _Plan(work, "ERROR", error=f"idempotency key was already used for another body (message "
                         f"{original.id})", duplicate_of=original.id)
        return _Plan(work, "STORED")

    def _unavailable(self, work: Prepared, error: str) -> Receipt:
        """The store failed: AR with ERR 207, nothing kept (the sender may resend)."""
        log.error("store failed, answering AR 207", extra={"route": work.route.name, "error": error})
        problem = Problem(APPLICATION_INTERNAL_ERROR, "the message could not be stored; send it again later")
        if work.header is None or work.delimiters is None or work.header.is_ack:
            return Receipt(None, "ERROR", (), error=str(problem), encoding=work.encoding)
        acks = tuple(self._acks(work, Outcome("rejected", (problem,))))
        return Receipt(None, "ERROR", acks, error=str(problem), encoding=work.encoding)

    def _acks(self, work: Prepared, outcome: Outcome) -> tuple[str, ...]:
        assert work.header is not None and work.delimiters is not None
        return tuple(acknowledgements(work.header, work.delimiters, outcome, now=self.clock,
                                      original_mode=work.route.original_mode))

    def _row(self, plan: _Plan) -> dict[str, object]:
        work = plan.work
        codes = ack_codes(plan.acks)
        application, facility, control_id, message_type, version = _origin(work)
        return {
            "route": work.route.name,
            "control_id": control_id,
            "sending_application": application,
            "sending_facility": facility,
            "message_type": message_type,
            "version": version,
            "content_hash": work.content_hash,
            "raw": work.text,
            "peer": work.peer,
            "status": plan.status,
            "ack_code": codes[-1] if codes else None,
            "ack": ACK_SEPARATOR.join(plan.acks) or None,
            "error": plan.error or None,
            "reading_count": len(work.readings) if plan.status == "STORED" else 0,
            "duplicate_of": plan.duplicate_of,
            "reprocess_of": work.reprocess_of,
            "received_at": utc_naive(work.received_at),
            "processed_at": utc_naive(self.clock()),
        }


def _origin(work: Prepared) -> tuple[str, str, str, str, str]:
    """Sender, facility, control id, message type and version as the messages row keeps them."""
    if work.submission is not None:
        return *(work.key or ("", "", "")), work.submission.kind, ""
    header = work.header
    if header is None:
        return "", "", "", "", ""
    return (_clip(header.sending_application, 227), _clip(header.sending_facility, 227),
            _clip(header.control_id, 200), _clip(f"{header.message_type}^{header.trigger_event}", 20),
            _clip(header.version, 10))


def _refused(row: EarlierMessage) -> bool:
    """Was an earlier message answered AR (its last ACK)?"""
    codes = ack_codes(row.ack.split(ACK_SEPARATOR)) if row.ack else []
    return bool(codes) and codes[-1] == "AR"


def _log_outcome(plan: _Plan) -> None:
    """Ids, codes and reasons only; the content (PHI) only where the route opts in with log_phi."""
    if plan.status == "STORED" and plan.duplicate_of is None:
        return  # the usual outcome logs nothing: build no fields for it
    fields: dict[str, object] = {"route": plan.work.route.name, "message_id": plan.message_id,
                                 "status": plan.status, "ack": ack_codes(plan.acks)}
    if plan.duplicate_of is not None:
        log.warning("duplicate control id with different content",
                    extra={**fields, "original_id": plan.duplicate_of})
    elif plan.status != "STORED":
        # Problem texts name segments and fields, never patient data.
        log.info("message not stored", extra={**fields, "reason": plan.error})
    if plan.work.route.log_phi and plan.status != "STORED":
        log.info("message content (route logs PHI)", extra={**fields, "content": plan.work.text})


def _chunks_with_unique_keys(works: list[Prepared]) -> Iterator[list[Prepared]]:
    """Split a batch where a duplicate key repeats, so a resend sees the message it repeats."""
    chunk: list[Prepared] = []
    keys: set[MessageKey] = set()
    for work in works:
        if work.key is not None and work.key in keys:
            yield chunk
            chunk, keys = [], set()
        chunk.append(work)
        if work.key is not None:
            keys.add(work.key)
    if chunk:
        yield chunk


def _clip(value: str, length: int) -> str:
    """Header values as sent, cut to their column (a hostile MSH must not turn into a store failure)."""
    return value[:length]
