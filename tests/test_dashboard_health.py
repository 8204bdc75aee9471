"""The integrations tiles' rules (adapters/dashboard/health.py): pure functions, each rule alone and together."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from adapters.dashboard.health import (
    GREEN,
    RED,
    YELLOW,
    DestinationFacts,
    RouteFacts,
    destination_health,
    duration,
    route_health,
)

NOW = datetime(2024, 3, 5, 10, 0, 0)
QUIET_ROUTE = RouteFacts(name="icu", listening=True, port=2575, last_received_at=NOW - timedelta(seconds=30),
                         expected_interval_seconds=300, received_recent=40, errored_recent=0, error_rate_limit=0.10,
                         queued=0, oldest_queued_at=None, silent_devices=0)
QUIET_DESTINATION = DestinationFacts(name="ehr", kind="ehr_soap", paused=False, paused_by=None, queued=0,
                                     oldest_queued_at=None, dead_letters=0, failed_recent=0, sent_recent=12,
                                     failed_since_sent=0,
                                     down_incident=False)


def route(**changes: object) -> tuple[str, tuple[str, ...]]:
    verdict = route_health(replace(QUIET_ROUTE, **changes), NOW)  # type: ignore[arg-type]
    return verdict.status, verdict.reasons


def destination(**changes: object) -> tuple[str, tuple[str, ...]]:
    verdict = destination_health(replace(QUIET_DESTINATION, **changes), NOW)  # type: ignore[arg-type]
    return verdict.status, verdict.reasons


def test_a_route_receiving_without_errors_is_green_and_says_why() -> None:
    assert route() == (GREEN, ("last message 30 s ago", "no errors in 15 min", "outbox empty"))
    assert route(queued=3, oldest_queued_at=NOW - timedelta(seconds=20))[1][-1] == "outbox draining (3 waiting)"
    verdict = route_health(QUIET_ROUTE, NOW)
    assert (verdict.word, verdict.reason) == ("OK", "last message 30 s ago; no errors in 15 min; outbox empty")


def test_a_listener_down_is_red() -> None:
    assert route(listening=False) == (RED, ("listener on port 2575 is down",))
    assert route(listening=False, port=None) == (RED, ("listener is down",))
    assert route(listening=None)[0] == GREEN  # REST and SOAP routes have no listener of their own


def test_errors_within_the_limit_are_yellow_over_it_red() -> None:
    assert route(errored_recent=2) == (YELLOW, ("2 of 40 messages refused in 15 min (5.0 %)",))
    assert route(errored_recent=4) == (YELLOW, ("4 of 40 messages refused in 15 min (10 %)",))  # at the limit
    assert route(errored_recent=5) == (RED, ("5 of 40 messages refused in 15 min (12 %), over the limit of 10 %",))
    assert route(errored_recent=2, error_rate_limit=0.01)[0] == RED


def test_a_few_messages_never_make_a_rate() -> None:
    assert route(received_recent=1, errored_recent=1) == (YELLOW, ("1 of 1 message refused in 15 min (100 %)",))
    assert route(received_recent=4, errored_recent=4)[0] == YELLOW
    assert route(received_recent=5, errored_recent=4)[0] == RED


def test_silence_beyond_the_expected_interval_is_yellow() -> None:
    assert route(last_received_at=NOW - timedelta(minutes=7)) == (
        YELLOW, ("nothing received for 7 min (expected every 5 min)",))
    assert route(last_received_at=None) == (YELLOW, ("nothing received yet",))
    assert route(last_received_at=NOW - timedelta(days=3), expected_interval_seconds=0)[0] == GREEN  # not watched
    assert route(last_received_at=NOW - timedelta(seconds=300))[0] == GREEN  # exactly the interval is in time


def test_a_silent_device_and_a_queue_not_draining_are_yellow() -> None:
    assert route(silent_devices=1) == (YELLOW, ("1 device silent",))
    assert route(silent_devices=3) == (YELLOW, ("3 devices silent",))
    assert route(queued=40, oldest_queued_at=NOW - timedelta(minutes=7)) == (
        YELLOW, ("outbox not draining: 40 records waiting, the oldest for 7 min",))
    assert route(queued=40, oldest_queued_at=NOW - timedelta(seconds=119))[0] == GREEN


def test_every_rule_that_fires_is_named_the_worst_first() -> None:
    status, reasons = route(silent_devices=1, listening=False, errored_recent=1)
    assert status == RED
    assert reasons == ("listener on port 2575 is down", "1 of 40 messages refused in 15 min (2.5 %)",
                       "1 device silent")


def test_a_destination_sending_is_green() -> None:
    assert destination() == (GREEN, ("no failed attempts in 15 min", "outbox empty"))
    assert destination(queued=2, oldest_queued_at=NOW)[1][-1] == "outbox draining (2 waiting)"


def test_dead_letters_and_an_unreachable_ehr_are_red() -> None:
    assert destination(dead_letters=1) == (RED, ("1 dead letter waiting for an operator",))
    assert destination(down_incident=True) == (RED, ("EHR unreachable: records keep failing (incident open)",))
    assert destination(failed_recent=3, failed_since_sent=3, sent_recent=0) == (
        RED, ("EHR unreachable: 3 failed attempts and none sent in 15 min",))
    assert destination(kind="notify", failed_recent=5, failed_since_sent=5, sent_recent=0)[1] == (
        "destination unreachable: 5 failed attempts and none sent in 15 min",)
    # An EHR that was delivering goes red as soon as it keeps failing, and green at its next delivery.
    assert destination(failed_recent=4, failed_since_sent=4, sent_recent=30) == (
        RED, ("EHR unreachable: 4 failed attempts since the last delivery",))
    assert destination(failed_recent=40, failed_since_sent=0, sent_recent=31) == (
        GREEN, ("recovered: delivering again after 40 failed attempts", "outbox empty"))


def test_some_failures_a_pause_and_a_growing_queue_are_yellow() -> None:
    assert destination(failed_recent=2, failed_since_sent=2, sent_recent=0) == (
        YELLOW, ("2 failed attempts in 15 min (retrying)",))
    assert destination(failed_recent=9, failed_since_sent=1, sent_recent=1) == (
        YELLOW, ("1 failed attempt since the last delivery (retrying)",))
    assert destination(paused=True, paused_by="ops.lee") == (YELLOW, ("paused by ops.lee",))
    assert destination(queued=8, oldest_queued_at=NOW - timedelta(hours=2, minutes=5)) == (
        YELLOW, ("outbox not draining: 8 records waiting, the oldest for 2 h 5 min",))


def test_durations_read_at_a_glance() -> None:
    assert [duration(s) for s in (0, 59, 60, 3599, 3600, 3660, 86400, 90000, -5)] == [
        "0 s", "59 s", "1 min", "59 min", "1 h", "1 h 1 min", "1 d", "1 d 1 h", "0 s"]
