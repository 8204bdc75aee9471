"""What crosses the pipes to the store process comes out as it went in."""
from datetime import UTC, datetime

from adapters.sql_store import SqlStore
from engine.channel import Channel, Inbound, Receipt, Route, Submission
from engine.store_wire import (
    FrameReader,
    frame,
    prepared_from_wire,
    prepared_to_wire,
    receipt_from_wire,
    receipt_to_wire,
)
from tests.messages import fixture, oru
from transforms.vitals import VitalsReading

ROUTE = Route(name="ward-7", original_mode=True)


def round_trip(item: Inbound | Submission):
    channel = Channel(SqlStore.from_url("sqlite://"))
    work = channel.prepare(item)
    [wire] = FrameReader().feed(frame(prepared_to_wire(work)))
    return work, prepared_from_wire(wire, {ROUTE.name: ROUTE})


def test_a_prepared_message_keeps_what_the_store_needs() -> None:
    work, back = round_trip(Inbound(fixture("multi_patient_v24.hl7"), ROUTE, "10.0.0.5:4000"))
    assert back.route is ROUTE and back.message is None and back.raw == b""
    for name in ("text", "peer", "received_at", "content_hash", "encoding", "delimiters", "header", "readings",
                 "problems", "filtered", "submission", "reprocess_of"):
        assert getattr(back, name) == getattr(work, name), name
    assert back.readings and back.key == work.key


def test_problems_travel_with_their_codes_and_places() -> None:
    work, back = round_trip(Inbound(oru("E-1", "P", "20240101100000", [("heart_rate", "fast")]), ROUTE))
    assert work.problems and back.problems == work.problems


def test_a_submission_keeps_its_duplicate_key() -> None:
    reading = VitalsReading("P-1", "DEV-1", "spo2", 97.0, "%", datetime(2024, 1, 1, tzinfo=UTC), "F", "REST",
                            "spo2", "97", "%", "k-1")
    work, back = round_trip(Submission(b'{"spo2": 97}', ROUTE, "REST", "DEV-1", "k-1", [reading], "10.0.0.6:1"))
    assert back.key == work.key == ("REST", "DEV-1", "k-1")
    assert back.readings == [reading] and back.submission is not None and back.submission.kind == "REST"


def test_a_receipt_comes_back_whole() -> None:
    receipt = Receipt(42, "STORED", ("MSH|...\rMSA|AA|X\r",), readings=8, alerts=1, encoding="latin-1")
    assert receipt_from_wire(receipt_to_wire(receipt)) == receipt


def test_frames_split_across_reads_and_several_in_one_read() -> None:
    data = frame(("a", 1)) + frame(None) + frame(("b", [2, 3]))
    reader = FrameReader()
    out = []
    for start in range(0, len(data), 5):
        out += reader.feed(data[start:start + 5])
    assert out == [("a", 1), None, ("b", [2, 3])]
    assert FrameReader().feed(data) == out
