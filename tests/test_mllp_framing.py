"""MLLP framing without sockets: every way a byte stream can cut, join or break frames."""
from __future__ import annotations

import pytest

from adapters.mllp.framing import END, START, FrameDecoder, FrameTooLarge, frame

pytestmark = pytest.mark.timeout(10)

MESSAGE = b"MSH|^~\\&|MONITOR|ICU|VITALS|HOSP|20240101120000||ORU^R01|1|P|2.5\rPID|1||42\rOBX|1|NM|8867-4||72|/min\r"


def test_frame_wraps_the_payload_in_start_and_end_blocks() -> None:
    assert frame(b"MSH|x") == b"\x0bMSH|x\x1c\x0d"
    assert frame(b"abc") == START + b"abc" + END


@pytest.mark.parametrize("payload", [b"a\x0bb", b"a\x1cb", b"a\x1c\x0d"])
def test_frame_refuses_payloads_that_would_break_the_framing(payload: bytes) -> None:
    with pytest.raises(ValueError, match="0x0B or 0x1C"):
        frame(payload)


def test_one_frame_in_one_read() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(frame(MESSAGE)) == [MESSAGE]
    assert not decoder.in_frame
    assert (decoder.discarded, decoder.abandoned, decoder.malformed) == (0, 0, 0)


def test_segment_separators_and_other_bytes_stay_in_the_payload() -> None:
    payload = MESSAGE + b"\n\x00\xff\xc3\xa9"
    assert FrameDecoder().feed(frame(payload)) == [payload]


def test_an_empty_frame_is_an_empty_payload() -> None:
    assert FrameDecoder().feed(b"\x0b\x1c\x0d") == [b""]


def test_byte_by_byte() -> None:
    decoder = FrameDecoder()
    received = []
    for byte in frame(MESSAGE) + frame(b"second"):
        received += decoder.feed(bytes([byte]))
    assert received == [MESSAGE, b"second"]


def test_several_frames_in_one_read_and_a_frame_across_reads() -> None:
    decoder = FrameDecoder()
    stream = frame(b"one") + frame(b"two") + frame(b"three")
    assert decoder.feed(stream[:-4]) == [b"one", b"two"]
    assert decoder.in_frame
    assert decoder.buffered == len(b"thr")
    assert decoder.feed(stream[-4:]) == [b"three"]
    assert not decoder.in_frame


def test_end_block_split_between_reads() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"\x0bMSH|x\x1c") == []
    assert decoder.in_frame  # EB alone does not end the frame
    assert decoder.feed(b"\x0d") == [b"MSH|x"]
    assert not decoder.in_frame


def test_bytes_before_a_start_block_are_discarded_and_counted() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"junk") == []
    assert not decoder.in_frame
    assert decoder.feed(b"\r\n" + frame(b"MSH|a") + b"\n" + frame(b"MSH|b")) == [b"MSH|a", b"MSH|b"]
    assert decoder.discarded == len(b"junk\r\n\n")


def test_a_start_block_inside_an_unfinished_frame_starts_a_new_frame() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"\x0bMSH|partial") == []
    assert decoder.feed(b"\x0bMSH|whole\x1c\x0d") == [b"MSH|whole"]
    assert decoder.abandoned == 1
    assert decoder.discarded == 0


def test_a_start_block_in_the_same_read_as_the_partial_frame() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"\x0bpartial\x0bwhole\x1c\x0d") == [b"whole"]
    assert decoder.abandoned == 1


def test_an_end_block_byte_not_followed_by_cr_breaks_the_frame() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"\x0bMSH|bad\x1cX trailing" + frame(b"MSH|good")) == [b"MSH|good"]
    assert decoder.malformed == 1
    assert decoder.discarded == len(b"X trailing")


def test_an_end_block_byte_at_the_end_of_a_read_followed_by_something_else() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"\x0bMSH|bad\x1c") == []
    assert decoder.feed(b"\x0a") == []  # EB LF is not an end block
    assert decoder.malformed == 1
    assert not decoder.in_frame
    assert decoder.feed(frame(b"MSH|next")) == [b"MSH|next"]


def test_an_end_block_byte_followed_by_a_start_block_begins_the_next_frame() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"\x0bMSH|bad\x1c") == []
    assert decoder.feed(b"\x0bMSH|next\x1c\x0d") == [b"MSH|next"]
    assert (decoder.malformed, decoder.discarded) == (1, 0)


def test_a_frame_of_exactly_the_limit_is_fine() -> None:
    assert FrameDecoder(max_frame_bytes=10).feed(frame(b"x" * 10)) == [b"x" * 10]


def test_an_end_block_byte_at_the_limit_is_not_counted_as_payload() -> None:
    decoder = FrameDecoder(max_frame_bytes=10)
    assert decoder.feed(b"\x0b" + b"x" * 10 + b"\x1c") == []
    assert decoder.feed(b"\x0d") == [b"x" * 10]


def test_a_frame_over_the_limit_raises_as_soon_as_it_passes_it() -> None:
    decoder = FrameDecoder(max_frame_bytes=10)
    assert decoder.feed(b"\x0b" + b"x" * 10) == []
    with pytest.raises(FrameTooLarge) as raised:
        decoder.feed(b"x")  # no end block yet: the limit holds while the frame grows
    assert raised.value.limit == 10
    assert raised.value.frames == []
    assert not decoder.in_frame  # nothing of it is kept


def test_frames_completed_before_the_oversized_one_travel_with_the_error() -> None:
    decoder = FrameDecoder(max_frame_bytes=10)
    with pytest.raises(FrameTooLarge) as raised:
        decoder.feed(frame(b"ok") + b"\x0b" + b"y" * 11)
    assert raised.value.frames == [b"ok"]


def test_bytes_outside_frames_never_count_against_the_limit() -> None:
    decoder = FrameDecoder(max_frame_bytes=10)
    assert decoder.feed(b"z" * 100 + frame(b"small")) == [b"small"]


def test_the_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        FrameDecoder(max_frame_bytes=0)
