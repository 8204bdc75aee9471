"""MLLP framing, sans-IO: turn a byte stream into HL7 message payloads and back.

The Minimal Lower Layer Protocol (HL7 v2 transport, MLLP release 1 and 2) wraps every message in a block::

    <SB> payload <EB><CR>        SB = 0x0B (vertical tab), EB = 0x1C (file separator), CR = 0x0D

TCP is a byte stream, not a message stream: one ``recv`` may hold half a frame, exactly one frame, several
frames, or the end of one frame and the start of the next. The :class:`FrameDecoder` therefore keeps state
between reads and hands out a payload only once its whole end block (both bytes, which may themselves arrive
in different reads) has been seen.

The payload may not contain SB or EB (the HL7 encoding rules keep them out of message text), so:

* bytes before a start block are not part of any message: they are dropped and counted (``discarded``);
* a start block inside an unfinished frame means the sender gave up on that frame and began a new one:
  the partial frame is dropped and counted (``abandoned``), the new frame is read;
* an EB not followed by CR is a protocol violation (HAPI's decoder rejects it too): the partial frame is
  dropped and counted (``malformed``) and decoding resumes at the next start block;
* a frame that grows beyond ``max_frame_bytes`` raises :class:`FrameTooLarge`; the caller must drop the
  connection, because after that nothing in the stream can be trusted to line up.

No I/O happens here, which is why this module can be tested byte by byte without sockets.
"""
from __future__ import annotations

import re

START = b"\x0b"  # SB, start block
END = b"\x1c\x0d"  # EB CR, end block
_EB = 0x1C
_EB_BYTE = bytes([_EB])
_CR = 0x0D
_MARKER = re.compile(rb"[\x0b\x1c]")  # the bytes that end plain payload inside a frame

DEFAULT_MAX_FRAME_BYTES = 1 << 20  # 1 MiB


class FramingError(ValueError):
    """The byte stream breaks MLLP so badly that the connection has to be dropped."""


class FrameTooLarge(FramingError):
    """A frame grew beyond the limit. ``frames`` holds the complete frames decoded before it in that read."""

    def __init__(self, limit: int, frames: list[bytes]) -> None:
        super().__init__(f"MLLP frame exceeds {limit} bytes")
        self.limit = limit
        self.frames = frames


def frame(payload: bytes) -> bytes:
    """Wrap one message in an MLLP block. Refuses payloads holding SB or EB: they would break the framing."""
    if START in payload or _EB_BYTE in payload:
        raise ValueError("an MLLP payload may not contain 0x0B or 0x1C")
    return START + payload + END


class FrameDecoder:
    """Feed it whatever the socket returned; it returns the payloads of the frames completed so far."""

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        if max_frame_bytes < 1:
            raise ValueError("max_frame_bytes must be positive")
        self.max_frame_bytes = max_frame_bytes
        self.discarded = 0  # bytes seen outside any frame
        self.abandoned = 0  # partial frames dropped because a new start block arrived
        self.malformed = 0  # partial frames dropped because EB was not followed by CR
        self._frame: bytearray | None = None  # payload of the frame being received
        self._eb_pending = False  # the last byte fed was an EB; the next one decides

    @property
    def in_frame(self) -> bool:
        """True between a start block and its end block (a reader should then apply its read timeout)."""
        return self._frame is not None

    @property
    def buffered(self) -> int:
        """Payload bytes held for the unfinished frame."""
        return len(self._frame) if self._frame is not None else 0

    def feed(self, data: bytes) -> list[bytes]:
        """Consume ``data``; return every payload completed by it, in order (maybe none)."""
        frames: list[bytes] = []
        pos = 0
        try:
            while pos < len(data):
                pos = self._inside(data, pos, frames) if self._frame is not None else self._outside(data, pos)
        except FrameTooLarge as error:
            error.frames = frames
            raise
        return frames

    def _outside(self, data: bytes, pos: int) -> int:
        """Between frames: skip to the next start block."""
        start = data.find(START, pos)
        if start < 0:
            self.discarded += len(data) - pos
            return len(data)
        self.discarded += start - pos
        self._frame = bytearray()
        return start + 1

    def _inside(self, data: bytes, pos: int, frames: list[bytes]) -> int:
        """Inside a frame: collect payload up to the next marker byte and act on it."""
        if self._eb_pending:
            self._eb_pending = False
            return self._after_eb(data, pos, frames)
        marker = _MARKER.search(data, pos)
        if marker is None:
            self._grow(data, pos, len(data))
            return len(data)
        at = marker.start()
        self._grow(data, pos, at)
        if data[at] != _EB:  # a start block: the sender began again
            self.abandoned += 1
            self._frame = bytearray()
            return at + 1
        if at + 1 == len(data):  # EB at the end of this read: wait for the next byte
            self._eb_pending = True
            return at + 1
        return self._after_eb(data, at + 1, frames)

    def _after_eb(self, data: bytes, pos: int, frames: list[bytes]) -> int:
        """``data[pos]`` follows an EB: CR completes the frame, anything else breaks it."""
        payload = self._frame
        self._frame = None
        if data[pos] == _CR and payload is not None:
            frames.append(bytes(payload))
            return pos + 1
        self.malformed += 1
        return pos  # not consumed: it may be the start block of the next frame

    def _grow(self, data: bytes, start: int, stop: int) -> None:
        """Append ``data[start:stop]`` to the frame, or raise if that would pass the limit."""
        assert self._frame is not None
        if len(self._frame) + (stop - start) > self.max_frame_bytes:
            self._frame = None
            raise FrameTooLarge(self.max_frame_bytes, [])
        self._frame += data[start:stop]
