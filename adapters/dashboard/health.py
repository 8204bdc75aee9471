"""Green, yellow or red for each integration tile, with the reason in words: pure rules, no I/O.

A route (a channel messages come in through) and an outbox destination (where records go out) each get a
verdict from facts the integrations page gathered (adapters/dashboard/facts.py):

- red: the route's listener is down; its refusal rate over the last 15 minutes is above the route's limit
  (with at least MIN_MESSAGES_FOR_RATE messages: one bad message in a quiet minute is yellow); a
  destination has dead letters, or is unreachable (a ``destination_down`` incident is open, or at least
  UNREACHABLE_FAILURES attempts failed in the window and none was sent).
- yellow: some messages refused or attempts failed in the window; the route silent for longer than its
  expected interval; a device of the route silent (``device_status.offline_since``); the outbox not
  draining (its oldest waiting record older than the queue age limit); a destination paused.
- green: none of these: receiving within its expected interval, no errors in the window, outbox draining.

Every rule that fires adds one sentence; the worst colour wins. Green verdicts say why they are green.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

GREEN, YELLOW, RED = "green", "yellow", "red"
WORDS = {GREEN: "OK", YELLOW: "Warning", RED: "Failing"}
_RANK = {GREEN: 0, YELLOW: 1, RED: 2}

WINDOW_MINUTES = 15
MIN_MESSAGES_FOR_RATE = 5
UNREACHABLE_FAILURES = 3
DEFAULT_ERROR_RATE_LIMIT = 0.10  # refused / received over the window
DEFAULT_QUEUE_AGE_LIMIT_SECONDS = 120.0


@dataclass(frozen=True)
class Verdict:
    status: str  # green, yellow, red
    reasons: tuple[str, ...]

    @property
    def word(self) -> str:
        return WORDS[self.status]

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


@dataclass(frozen=True)
class RouteFacts:
    """What is known about one route; counts cover the last WINDOW_MINUTES."""

    name: str
    listening: bool | None  # None: the route has no listener of its own (REST, SOAP) or it is not known
    port: int | None
    last_received_at: datetime | None
    expected_interval_seconds: int  # 0: silence is not watched
    received_recent: int
    errored_recent: int
    error_rate_limit: float
    queued: int  # outbox records of this route waiting (PENDING or SENDING)
    oldest_queued_at: datetime | None
    silent_devices: int


@dataclass(frozen=True)
class DestinationFacts:
    name: str
    kind: str | None  # ehr_soap, notify; None when not configured (rows only)
    paused: bool
    paused_by: str | None
    queued: int
    oldest_queued_at: datetime | None
    dead_letters: int
    failed_recent: int  # attempts that failed in the window
    sent_recent: int  # attempts that succeeded in the window
    failed_since_sent: int  # failed attempts in the window after the newest delivery (all of them if none)
    down_incident: bool  # a destination_down incident is open or acknowledged


def route_health(facts: RouteFacts, now: datetime,
                 queue_age_limit_seconds: float = DEFAULT_QUEUE_AGE_LIMIT_SECONDS) -> Verdict:
    found: list[tuple[str, str]] = []
    if facts.listening is False:
        where = f" on port {facts.port}" if facts.port else ""
        found.append((RED, f"listener{where} is down"))
    found.extend(_errors(facts))
    found.extend(_silence(facts, now))
    if facts.silent_devices:
        found.append((YELLOW, f"{_count(facts.silent_devices, 'device')} silent"))
    found.extend(_queue(facts.queued, facts.oldest_queued_at, now, queue_age_limit_seconds))
    if found:
        return _verdict(found)
    return Verdict(GREEN, tuple(_route_fine(facts, now)))


def destination_health(facts: DestinationFacts, now: datetime,
                       queue_age_limit_seconds: float = DEFAULT_QUEUE_AGE_LIMIT_SECONDS) -> Verdict:
    found: list[tuple[str, str]] = []
    if facts.dead_letters:
        found.append((RED, f"{_count(facts.dead_letters, 'dead letter')} waiting for an operator"))
    who = "EHR" if facts.kind == "ehr_soap" else "destination"
    if facts.down_incident:
        found.append((RED, f"{who} unreachable: records keep failing (incident open)"))
    elif facts.failed_since_sent >= UNREACHABLE_FAILURES:
        since = "since the last delivery" if facts.sent_recent else f"and none sent in {WINDOW_MINUTES} min"
        found.append((RED, f"{who} unreachable: {_count(facts.failed_since_sent, 'failed attempt')} {since}"))
    elif facts.failed_since_sent:
        found.append((YELLOW, f"{_count(facts.failed_since_sent, 'failed attempt')} since the last delivery "
                              "(retrying)" if facts.sent_recent else
                              f"{_count(facts.failed_since_sent, 'failed attempt')} in {WINDOW_MINUTES} min "
                              "(retrying)"))
    if facts.paused:
        found.append((YELLOW, f"paused by {facts.paused_by}" if facts.paused_by else "paused"))
    found.extend(_queue(facts.queued, facts.oldest_queued_at, now, queue_age_limit_seconds))
    if found:
        return _verdict(found)
    fine = [f"recovered: delivering again after {_count(facts.failed_recent, 'failed attempt')}"
            if facts.failed_recent else f"no failed attempts in {WINDOW_MINUTES} min"]
    fine.append(f"outbox draining ({facts.queued} waiting)" if facts.queued else "outbox empty")
    return Verdict(GREEN, tuple(fine))


def _errors(facts: RouteFacts) -> list[tuple[str, str]]:
    if not facts.errored_recent:
        return []
    rate = facts.errored_recent / facts.received_recent if facts.received_recent else 1.0
    text = (f"{facts.errored_recent} of {_count(facts.received_recent, 'message')} refused in "
            f"{WINDOW_MINUTES} min ({_percent(rate)})")
    if facts.received_recent >= MIN_MESSAGES_FOR_RATE and rate > facts.error_rate_limit:
        return [(RED, f"{text}, over the limit of {_percent(facts.error_rate_limit)}")]
    return [(YELLOW, text)]


def _silence(facts: RouteFacts, now: datetime) -> list[tuple[str, str]]:
    interval = facts.expected_interval_seconds
    if interval <= 0:
        return []
    if facts.last_received_at is None:
        return [(YELLOW, "nothing received yet")]
    quiet = (now - facts.last_received_at).total_seconds()
    if quiet > interval:
        return [(YELLOW, f"nothing received for {duration(quiet)} (expected every {duration(interval)})")]
    return []


def _queue(queued: int, oldest: datetime | None, now: datetime, limit: float) -> list[tuple[str, str]]:
    if not queued or oldest is None:
        return []
    age = (now - oldest).total_seconds()
    if age > limit:
        return [(YELLOW, f"outbox not draining: {_count(queued, 'record')} waiting, the oldest for "
                         f"{duration(age)}")]
    return []


def _route_fine(facts: RouteFacts, now: datetime) -> list[str]:
    fine = []
    if facts.last_received_at is not None:
        fine.append(f"last message {duration((now - facts.last_received_at).total_seconds())} ago")
    fine.append(f"no errors in {WINDOW_MINUTES} min")
    fine.append(f"outbox draining ({facts.queued} waiting)" if facts.queued else "outbox empty")
    return fine


def _verdict(found: list[tuple[str, str]]) -> Verdict:
    worst = max((status for status, _ in found), key=_RANK.__getitem__)
    ordered = sorted(found, key=lambda item: -_RANK[item[0]])
    return Verdict(worst, tuple(text for _, text in ordered))


def duration(seconds: float) -> str:
    """A span in words a glance takes in: 45 s, 7 min, 3 h 5 min, 2 d 4 h."""
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.0f} %" if fraction * 100 >= 10 or fraction == 0 else f"{fraction * 100:.1f} %"
