"""Group commit: messages that arrive while a transaction is being committed share the next one.

A commit (an fsync) costs far more than storing one message, so committing each message alone caps the
engine at a few hundred messages a second. Writer threads take every message waiting in the queue and store
them in ONE transaction (``Channel.dispatch_batch``); each sender still gets its ACK only after the commit
that holds its message. Nothing waits on purpose: a lone message is committed at once, a busy engine forms
larger batches by itself.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from engine.channel import Channel, Inbound, Prepared, Receipt, Submission

log = logging.getLogger("vitalsstream.group_commit")


@dataclass
class _Pending:
    prepared: Prepared
    future: asyncio.Future[Receipt]
    loop: asyncio.AbstractEventLoop


_STOP = object()


class GroupCommitter:
    def __init__(self, channel: Channel, writers: int = 1, max_batch: int = 256):
        self.channel = channel
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Pending | object] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._write, name=f"group-commit-{n}", daemon=True)
                         for n in range(writers)]
        self.batches = 0
        self.messages = 0

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    async def submit(self, inbound: Inbound | Submission) -> Receipt:
        """Store one message; returns once the transaction holding it has committed (or failed).

        The message is parsed and transformed here, in the caller's thread, so that work overlaps with the
        writers' commits (which wait on the disk with the GIL released).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Receipt] = loop.create_future()
        self._queue.put(_Pending(self.channel.prepare(inbound), future, loop))
        return await future

    def stop(self) -> None:
        """Finish what is queued, then end the writer threads."""
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join()

    def _write(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            stop_seen = self._drain(batch)
            self._commit([p for p in batch if isinstance(p, _Pending)])
            if stop_seen:
                return

    def _drain(self, batch: list[_Pending | object]) -> bool:
        """Add what is already waiting (up to max_batch); True when a stop request was taken."""
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is _STOP:
                return True
            batch.append(item)
        return False

    def _commit(self, batch: list[_Pending]) -> None:
        try:
            receipts = self.channel.store_batch([p.prepared for p in batch])
        except Exception as error:  # never leave a sender waiting: fail its future instead
            log.exception("batch failed", extra={"messages": len(batch), "error": type(error).__name__})
            _hand_back(batch, [error] * len(batch))
            return
        self.batches += 1
        self.messages += len(batch)
        _hand_back(batch, receipts)


def _hand_back(batch: list[_Pending], outcomes: Sequence[Receipt | Exception]) -> None:
    """Settle the batch's futures with ONE callback per event loop: each call_soon_threadsafe wakes the loop
    through its self-pipe (a system call, and a GIL hand-over) from this thread, so not one per message."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Receipt], Receipt | Exception]]] = {}
    for pending, outcome in zip(batch, outcomes, strict=True):
        by_loop.setdefault(pending.loop, []).append((pending.future, outcome))
    for loop, settled in by_loop.items():
        loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: list[tuple[asyncio.Future[Receipt], Receipt | Exception]]) -> None:
    """In the loop's thread, in batch order: a receipt resolves its future, an exception fails it."""
    for future, outcome in settled:
        if future.done():
            continue
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
