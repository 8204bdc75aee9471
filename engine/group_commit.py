"""Group commit: messages that arrive while a transaction is being committed share the next one.

A commit (an fsync) costs far more than storing one message, so committing each message alone caps the
engine at a few hundred messages a second. The transactions run in the store process
(engine/store_process.py), whose writers take every message waiting and store them in ONE transaction; each
sender still gets its ACK only after the commit that holds its message.

Here, on the engine's event loop, ``submit`` prepares a message (decode, parse, transform: CPU work that
stays in this process), and the messages submitted in one turn of the loop go to the store process as one
frame on a pipe; the receipts come back on another pipe, read by the loop as well. No thread of this process
takes part, so nothing here waits for another thread to hand over the interpreter lock.

If the store process dies, the messages it held fail (an MLLP sender gets no ACK and resends; the duplicate
check answers a message that was committed with its original answer) and a new store process starts.
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import subprocess
import sys

from engine.channel import Channel, Inbound, Prepared, Receipt, Route, Submission
from engine.store_wire import FrameReader, frame, prepared_to_wire, receipt_from_wire

log = logging.getLogger("vitalsstream.group_commit")

RESTART_DELAY = 1.0  # before a new store process replaces one that died (no tight loop if it cannot start)
STOP_TIMEOUT = 60.0  # for the store process to finish what it holds once told to stop
READ_CHUNK = 1 << 20


class StoreUnavailable(RuntimeError):
    """A message could not be stored: its batch raised in the store process, or the process died."""


class GroupCommitter:
    def __init__(self, channel: Channel, writers: int = 1, max_batch: int = 256):
        """``channel`` prepares messages here; the store process opens a channel on the same database."""
        store = channel.store
        if store.dialect == "sqlite" and store.engine.url.database in (None, "", ":memory:"):
            raise ValueError("group commit needs a database file: an in-memory SQLite database is per process")
        self.channel = channel
        self.writers = writers
        self.max_batch = max_batch
        self.batches = 0
        self.messages = 0
        self.restarts = 0  # store processes that died and were replaced
        self._url = store.engine.url.render_as_string(hide_password=False)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._requests = -1  # our ends of the pipes, -1 while no store process runs
        self._replies = -1
        self._numbers = itertools.count()
        self._waiting: dict[int, asyncio.Future[Receipt]] = {}
        self._queued: list[tuple[int, Prepared]] = []  # submitted, not yet framed
        self._flush_soon = False
        self._unsent = bytearray()  # framed, not yet taken by the pipe
        self._routes_sent: dict[str, Route] = {}  # what the running store process knows
        self._reader = FrameReader()
        self._stopping = False
        self._ended: asyncio.Event | None = None  # set when the store process closed its replies pipe

    @property
    def store_process_id(self) -> int | None:
        """The store process's pid while one runs (for operators and tests)."""
        return self._process.pid if self._process is not None and self._requests >= 0 else None

    async def start(self) -> None:
        """Start the store process; from now on this committer belongs to the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._spawn()

    async def submit(self, item: Inbound | Submission) -> Receipt:
        """Store one message; returns once the transaction holding it has committed (or failed)."""
        if self._loop is None or self._stopping:
            raise StoreUnavailable("the store is not running")
        future = self._loop.create_future()
        number = next(self._numbers)
        self._queued.append((number, self.channel.prepare(item)))
        self._waiting[number] = future
        if not self._flush_soon:
            self._flush_soon = True
            self._loop.call_soon(self._flush)
        return await future

    async def stop(self) -> None:
        """Finish what is submitted, then end the store process."""
        if self._loop is None or self._stopping:
            return
        self._stopping = True
        self._flush()
        process, ended = self._process, self._ended
        if process is not None and ended is not None:
            self._unsent += frame(None)
            self._write()
            try:
                await asyncio.wait_for(ended.wait(), STOP_TIMEOUT)
                await asyncio.wait_for(asyncio.to_thread(process.wait), STOP_TIMEOUT)
            except TimeoutError:
                log.error("store process did not stop in time; killing it")
                process.kill()
                await asyncio.to_thread(process.wait)
        self._close_pipes()
        self._fail(list(self._waiting), "the engine stopped before the message was stored")

    def _spawn(self) -> None:
        if self._stopping:
            return
        if self._process is not None:  # the one that died: collect it (it closed its pipe as it ended)
            try:
                self._process.wait(5.0)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        requests_read, requests_write = os.pipe()
        replies_read, replies_write = os.pipe()
        try:
            self._process = subprocess.Popen([sys.executable, "-m", "engine.store_process", str(requests_read),
                                              str(replies_write)], pass_fds=(requests_read, replies_write))
        except OSError:
            os.close(requests_write)
            os.close(replies_read)
            raise
        finally:
            os.close(requests_read)
            os.close(replies_write)
        self._requests, self._replies = requests_write, replies_read
        os.set_blocking(self._requests, False)
        os.set_blocking(self._replies, False)
        assert self._loop is not None
        self._ended = asyncio.Event()
        self._reader = FrameReader()
        self._routes_sent = {}
        self._unsent = bytearray(frame((self._url, self.writers, self.max_batch,
                                        logging.getLevelName(logging.getLogger().getEffectiveLevel()))))
        self._loop.add_reader(self._replies, self._read)
        self._flush()
        self._write()

    def _flush(self) -> None:
        """Frame what was submitted since the last flush: one frame, one pickle, for all of it."""
        self._flush_soon = False
        if not self._queued or self._requests < 0:
            return  # nothing to send, or no store process right now (a new one takes the queue)
        batch, self._queued = self._queued, []
        routes: dict[str, Route] = {}
        for _, work in batch:
            if self._routes_sent.get(work.route.name) is not work.route:
                self._routes_sent[work.route.name] = routes[work.route.name] = work.route
        self._unsent += frame((routes, [(number, prepared_to_wire(work)) for number, work in batch]))
        self._write()

    def _write(self) -> None:
        """Give the pipe what it takes now; wait for it to take the rest (never block the loop)."""
        assert self._loop is not None
        if self._requests < 0:  # no store process right now: what was framed for the last one is void
            self._unsent.clear()
            return
        try:
            written = os.write(self._requests, self._unsent) if self._unsent else 0
        except BlockingIOError:
            written = 0
        except OSError:  # the store process is gone: its replies pipe ends too, and _read handles that
            self._unsent.clear()
            written = 0
        del self._unsent[:written]
        if self._unsent:
            self._loop.add_writer(self._requests, self._write)
        else:
            self._loop.remove_writer(self._requests)

    def _read(self) -> None:
        try:
            data = os.read(self._replies, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._store_process_ended()
            return
        for message in self._reader.feed(data):
            assert isinstance(message, tuple)
            if message[0] == "stored":
                self.batches += 1
                self.messages += len(message[1])
                for number, wire in message[1]:
                    future = self._waiting.pop(number, None)
                    if future is not None and not future.done():
                        future.set_result(receipt_from_wire(wire))
            elif message[0] == "failed":
                self._fail(message[1], f"the store failed ({message[2]})")
            else:  # "outbox"
                self.channel.outbox_written()

    def _store_process_ended(self) -> None:
        assert self._loop is not None and self._ended is not None and self._process is not None
        self._close_pipes()
        self._ended.set()
        if self._stopping:
            return
        self.restarts += 1
        log.error("store process ended unexpectedly; starting a new one", extra={"exitcode": self._process.poll()})
        queued = {number for number, _ in self._queued}  # not sent yet: the next store process takes them
        self._fail([number for number in self._waiting if number not in queued], "the store process ended")
        self._loop.call_later(RESTART_DELAY, self._respawn)

    def _respawn(self) -> None:
        try:
            self._spawn()
        except OSError as error:  # no new process (out of memory, of processes): try again, never give up
            log.error("could not start a store process; trying again", extra={"error": type(error).__name__})
            assert self._loop is not None
            self._loop.call_later(RESTART_DELAY, self._respawn)

    def _close_pipes(self) -> None:
        assert self._loop is not None
        for fd, remove in ((self._requests, self._loop.remove_writer), (self._replies, self._loop.remove_reader)):
            if fd >= 0:
                remove(fd)
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._requests = self._replies = -1
        self._unsent.clear()

    def _fail(self, numbers: list[int], reason: str) -> None:
        for number in numbers:
            future = self._waiting.pop(number, None)
            if future is not None and not future.done():
                future.set_exception(StoreUnavailable(reason))
