"""The store process: where group commit runs, beside the engine's process and its event loop.

``python -m engine.store_process REQUESTS_FD REPLIES_FD``, started by engine/group_commit.py. The engine's
process receives, parses and transforms (``Channel.prepare``) and writes the prepared messages to the
requests pipe. Each writer thread here takes everything waiting in the pipe (up to ``max_batch`` messages)
and stores it in ONE transaction (``Channel.store_batch``); the receipts go back only after the commit that
holds their messages. Nothing waits on purpose: a lone message is committed at once, a busy engine forms
larger batches by itself.

Why a process: in one process the event loop and the writers take turns on one interpreter lock, and the
engine used one core of two (measured, SQLite, 16 connections: the process at 98% of a core, the machine at
58% of two). See docs/architecture.md.

The frames (engine/store_wire.py):
- in: first the settings ``(database URL, writers, max_batch, log level)``; then batches
  ``(routes, [(number, prepared), ...])``, where ``routes`` holds the routes named for the first time;
  ``None`` asks the process to finish what it holds and exit (so does the end of the pipe).
- out: ``("stored", [(number, receipt), ...])``; ``("failed", [number, ...], error type)`` for a batch that
  raised; ``("outbox",)`` after a commit that wrote outbox rows (the engine wakes its outbox worker).
"""
from __future__ import annotations

import logging
import os
import select
import signal
import sys
import threading

from adapters.sql_store import SqlStore
from engine import logs
from engine.channel import Channel, Prepared, Route
from engine.store_wire import FrameReader, frame, prepared_from_wire, receipt_to_wire

log = logging.getLogger("vitalsstream.group_commit")

READ_CHUNK = 1 << 20


class Requests:
    """The requests pipe, read by whichever writer is free: it takes all that is waiting."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._reader = FrameReader()
        self._frames: list[object] = []
        self._records: list[tuple[int, Prepared]] = []  # read, not yet taken (a frame may hold more than a batch)
        self._lock = threading.Lock()
        self._routes: dict[str, Route] = {}
        self.ended = False  # the engine asked to stop, or is gone

    def settings(self) -> tuple[str, int, int, str]:
        first = self._next_frame(block=True)
        if not isinstance(first, tuple):
            raise SystemExit("store process: expected its settings first")
        return first

    def next_batch(self, max_batch: int) -> list[tuple[int, Prepared]]:
        """Block for the first message, then add what is already waiting, up to ``max_batch``; empty once the
        pipe has ended and everything read was taken."""
        with self._lock:
            while len(self._records) < max_batch and not self.ended:
                message = self._next_frame(block=not self._records)
                if message is _NOTHING:
                    break
                if message is None:
                    self.ended = True
                    break
                assert isinstance(message, tuple)
                routes, records = message
                self._routes.update(routes)
                self._records += [(number, prepared_from_wire(wire, self._routes)) for number, wire in records]
            batch, self._records = self._records[:max_batch], self._records[max_batch:]
        return batch

    def _next_frame(self, block: bool) -> object:
        while not self._frames:
            if not block and not select.select([self._fd], [], [], 0)[0]:
                return _NOTHING
            data = os.read(self._fd, READ_CHUNK)
            if not data:  # the engine is gone
                return None
            self._frames = self._reader.feed(data)
        return self._frames.pop(0)


_NOTHING = object()


class Replies:
    """The replies pipe, written by every writer, one whole frame at a time."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()

    def send(self, message: tuple[object, ...]) -> None:
        data = memoryview(frame(message))
        with self._lock:
            try:
                while data:
                    data = data[os.write(self._fd, data):]
            except OSError:  # the engine is gone; the requests pipe ends next, and then this process
                pass


def serve(requests: Requests, replies: Replies) -> None:
    """Store batches until the engine asks to stop (or is gone), then finish and close."""
    db_url, writers, max_batch, log_level = requests.settings()
    logs.configure(log_level)
    store = SqlStore.from_url(db_url, keep_writer_connections=True)
    channel = Channel(store, outbox_written=lambda: replies.send(("outbox",)))
    threads = [threading.Thread(target=_write, args=(channel, requests, replies, max_batch), name=f"writer-{n}")
               for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()


def _write(channel: Channel, requests: Requests, replies: Replies, max_batch: int) -> None:
    while True:
        batch = requests.next_batch(max_batch)
        if not batch:
            return
        numbers = [number for number, _ in batch]
        try:
            receipts = channel.store_batch([work for _, work in batch])
        except Exception as error:  # never leave a sender waiting: fail its messages instead
            log.exception("batch failed", extra={"messages": len(batch), "error": type(error).__name__})
            replies.send(("failed", numbers, type(error).__name__))
            continue
        replies.send(("stored", [(number, receipt_to_wire(receipt))
                                 for number, receipt in zip(numbers, receipts, strict=True)]))


def main(argv: list[str]) -> None:
    # Ctrl-C reaches every process of the terminal's group and SIGTERM may reach every process of a service:
    # this process stops when the engine tells it to (or is gone), after the work it holds.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    serve(Requests(int(argv[1])), Replies(int(argv[2])))


if __name__ == "__main__":
    main(sys.argv)
