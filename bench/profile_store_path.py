"""Where the engine's CPU goes per message on the store-and-ACK path, in one process, without sockets.

It does what the MLLP listener and a group-commit writer do for each message, minus the network:
``Channel.prepare`` (decode, parse, MSH, ORU transform, the ACKs), ``Channel.store_batch`` on batches of 16
(one transaction: duplicate lookup, message rows, readings, alert evaluation, commit), then the answer
(``Receipt.ack_bytes`` and MLLP ``frame``), against a fresh SQLite file or a scratch PostgreSQL database
(created, upgraded, dropped at the end).

Times are CPU time of this process (``time.process_time``), which other work on the machine disturbs far
less than wall-clock time; the PostgreSQL server's own CPU is not in them (wall-clock is shown too). Each
round runs twice on a fresh database: once plain, for the stage totals, and once with a timer around every
step, for the split (the timers add about a microsecond a step, so the split sums to a little more). The
median of the rounds is reported. ``--cprofile`` runs one more plain round under cProfile and prints the
functions that cost most, with calls per message.

Messages: ``pcd01`` (default) are the MLLP benchmark's (bench/mllp_bench.py ``Feed``: 1.5 KB IHE PCD-01,
8 MDC vitals, unique MSH-10, 24 beds); ``fixtures`` cycles fixtures/hl7/*.hl7 and tests.messages.oru()
messages with unique MSH-10.

Usage: .venv/bin/python bench/profile_store_path.py [--db sqlite|postgresql] [--messages N] [--rounds R]
       [--batch B] [--feed pcd01|fixtures] [--cprofile [--top K] [--pstats FILE]] [--postgres-url URL]
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import gc
import io
import pstats
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # this tree's packages first (a copy of the repository profiles itself), and tests/
    sys.path.insert(0, str(ROOT))

import engine.channel as channel_module  # noqa: E402
from adapters.mllp.framing import frame  # noqa: E402
from adapters.sql_store import SqlStore, StoreTransaction  # noqa: E402
from engine.channel import Channel, Inbound, Route  # noqa: E402
from engine.migrations import upgrade  # noqa: E402
from engine.routes import load_routes  # noqa: E402

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PEER = "127.0.0.1:50000"

# (label, module or class, attribute): every step the split times. Labels with the same prefix before
# the colon add up to one stage.
PREPARE_STEPS = (
    ("prepare: decode (MSH-18)", channel_module, "decode_with_codec"),
    ("prepare: parse", channel_module, "parse"),
    ("prepare: read MSH", channel_module, "read_header"),
    ("prepare: ORU transform", channel_module, "transform"),
    ("prepare: build ACKs", channel_module, "acknowledgements"),
)
STORE_STEPS = (
    ("store: duplicate lookup", StoreTransaction, "messages_with_keys"),
    ("store: insert messages", StoreTransaction, "add_messages"),
    ("store: insert readings", StoreTransaction, "add_readings"),
    ("store: evaluate alerts", StoreTransaction, "evaluate_alerts"),
    ("store: message row dicts", Channel, "_row"),
    ("store: log outcome", channel_module, "_log_outcome"),
)


# ----------------------------------------------------------------------------------------------------------
# Messages
# ----------------------------------------------------------------------------------------------------------

def pcd01_messages(count: int, prefix: str) -> list[bytes]:
    """The MLLP benchmark's messages (same template, values and beds)."""
    from mllp_bench import Feed  # bench/ is on sys.path when this file runs as a script

    feed = Feed(seed=1)
    return [feed.next(prefix)[1] for _ in range(count)]


def fixture_messages(count: int, prefix: str) -> list[bytes]:
    """The good fixtures and a few oru() messages in turn, each with a unique MSH-10."""
    from tests.messages import FIXTURES, oru

    templates = [path.read_bytes() for path in sorted(FIXTURES.glob("*.hl7"))]
    templates += [oru("X", "PAT-1", "20250314101500+0000", [("heart_rate", 72), ("spo2", 97), ("resp_rate", 16)]),
                  oru("X", "PAT-2", "20250314101500+0000", [("temperature", 37.2), ("bp_systolic", 121)],
                      device="MON-7", ack_modes="AL/AL")]
    return [_with_control_id(templates[n % len(templates)], f"{prefix}{n:07d}") for n in range(count)]


def _with_control_id(raw: bytes, control_id: str) -> bytes:
    """``raw`` with MSH-10 replaced (MSH-1 is the byte after 'MSH'; MSH-10 is the 9th field after it)."""
    start = raw.index(b"MSH")
    end = min(i for i in (raw.find(b"\r", start), raw.find(b"\n", start), len(raw)) if i >= 0)
    separator = raw[start + 3:start + 4]
    fields = raw[start:end].split(separator)
    fields[9] = control_id.encode()
    return raw[:start] + separator.join(fields) + raw[end:]


# ----------------------------------------------------------------------------------------------------------
# Databases
# ----------------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def fresh_store(db: str, postgres_url: str) -> Iterator[SqlStore]:
    """An upgraded, empty database of the kind asked for, removed afterwards."""
    if db == "sqlite":
        workdir = Path(tempfile.mkdtemp(prefix="vitals-profile-"))
        store = SqlStore.from_url(f"sqlite:///{workdir / 'profile.db'}", keep_writer_connections=True)
        try:
            upgrade(store.engine)
            yield store
        finally:
            store.close()
            shutil.rmtree(workdir, ignore_errors=True)
        return
    server = make_url(postgres_url)
    name = f"vitals_profile_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(host=server.host, port=server.port or 5432, user=server.username,
                         password=server.password, dbname=server.database or "postgres", autocommit=True,
                         connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        store = SqlStore.from_url(server.set(database=name).render_as_string(hide_password=False),
                                  keep_writer_connections=True)
        try:
            upgrade(store.engine)
            yield store
        finally:
            store.close()
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ----------------------------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------------------------

class StepTimers:
    """CPU time and calls per labelled step, by wrapping functions and methods for the length of a round."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = defaultdict(float)
        self.wall: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._undo: list[Callable[[], None]] = []

    def add(self, label: str, cpu_started: float, wall_started: float) -> None:
        self.cpu[label] += time.process_time() - cpu_started
        self.wall[label] += time.perf_counter() - wall_started
        self.calls[label] += 1

    def wrap(self, label: str, owner: Any, name: str) -> None:
        """Time every call of ``owner.name``; a step the code no longer has is left out of the split."""
        original = (owner.__dict__ if isinstance(owner, type) else vars(owner)).get(name)
        if original is None:
            print(f"note: {getattr(owner, '__name__', owner)}.{name} not found; {label!r} is not timed",
                  file=sys.stderr)
            return
        add, cpu_clock, wall_clock = self.add, time.process_time, time.perf_counter

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            cpu_started, wall_started = cpu_clock(), wall_clock()
            try:
                return original(*args, **kwargs)
            finally:
                add(label, cpu_started, wall_started)

        setattr(owner, name, timed)
        self._undo.append(lambda: setattr(owner, name, original))

    def wrap_transaction(self, store: SqlStore) -> None:
        """``store.transaction()`` split into opening (connection, BEGIN) and closing (COMMIT, release)."""
        original = store.transaction
        add, cpu_clock, wall_clock = self.add, time.process_time, time.perf_counter

        @contextlib.contextmanager
        def timed() -> Iterator[StoreTransaction]:
            cpu_started, wall_started = cpu_clock(), wall_clock()
            manager = original()
            tx = manager.__enter__()
            add("store: BEGIN (connection, begin)", cpu_started, wall_started)
            try:
                yield tx
            except BaseException:
                if not manager.__exit__(*sys.exc_info()):
                    raise
            else:
                cpu_started, wall_started = cpu_clock(), wall_clock()
                manager.__exit__(None, None, None)
                add("store: COMMIT (commit, release)", cpu_started, wall_started)

        store.transaction = timed  # type: ignore[method-assign]
        self._undo.append(lambda: delattr(store, "transaction"))

    def undo(self) -> None:
        while self._undo:
            self._undo.pop()()


@dataclass
class Round:
    """What one pass measured: CPU and wall seconds per stage (and per step in a timed round), calls."""

    cpu: dict[str, float]
    wall: dict[str, float]
    calls: dict[str, int]
    seconds: float  # wall clock of the whole pass


def run_round(store: SqlStore, route: Route, raws: Sequence[bytes], batch: int, split: bool) -> Round:
    """One pass over ``raws`` in batches of ``batch``; with ``split`` every step is timed as well."""
    channel = Channel(store)
    timers = StepTimers()
    if split:
        for label, owner, name in PREPARE_STEPS + STORE_STEPS:
            timers.wrap(label, owner, name)
        timers.wrap_transaction(store)
    stages = StepTimers()
    gc.collect()
    began = time.perf_counter()
    try:
        for chunk in (raws[i:i + batch] for i in range(0, len(raws), batch)):
            cpu_started, wall_started = time.process_time(), time.perf_counter()
            prepared = [channel.prepare(Inbound(raw, route, PEER)) for raw in chunk]
            stages.add("prepare", cpu_started, wall_started)
            cpu_started, wall_started = time.process_time(), time.perf_counter()
            receipts = channel.store_batch(prepared)
            stages.add("store_batch", cpu_started, wall_started)
            cpu_started, wall_started = time.process_time(), time.perf_counter()
            answers = [[frame(ack) for ack in receipt.ack_bytes()] for receipt in receipts]
            stages.add("answer (encode + frame)", cpu_started, wall_started)
            if any(receipt.status != "STORED" for receipt in receipts) or len(answers) != len(chunk):
                raise RuntimeError(f"a message was not stored: {[r.status for r in receipts]}")
    finally:
        timers.undo()
    seconds = time.perf_counter() - began
    return Round({**stages.cpu, **timers.cpu}, {**stages.wall, **timers.wall}, dict(timers.calls), seconds)


# ----------------------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------------------

def stage_table(plain: list[Round], timed: list[Round], count: int) -> str:
    """Median CPU and wall us per message of each stage (plain rounds) and step (timed rounds)."""
    def us(rounds: list[Round], key: str, wall: bool = False) -> float:
        return statistics.median((r.wall if wall else r.cpu).get(key, 0.0) for r in rounds) * 1e6 / count

    calls = timed[-1].calls
    lines = [f"{'stage / step':42} {'CPU us':>8} {'wall us':>8} {'calls':>7}   (per message)"]
    stages = ("prepare", "store_batch", "answer (encode + frame)")
    for stage in stages:
        lines.append(f"{stage:42} {us(plain, stage):8.1f} {us(plain, stage, True):8.1f}")
        prefix = {"prepare": "prepare:", "store_batch": "store:"}.get(stage)
        if prefix is None:
            continue
        steps = [key for key in timed[0].cpu if key.startswith(prefix)]
        for key in steps:
            per_message = calls.get(key, 0) / count
            lines.append(f"  {key:40} {us(timed, key):8.1f} {us(timed, key, True):8.1f} {per_message:7.3f}")
        rest = [us(timed, stage, wall) - sum(us(timed, key, wall) for key in steps) for wall in (False, True)]
        label = f"{prefix} the rest (timed total {us(timed, stage):.1f})"
        lines.append(f"  {label:40} {rest[0]:8.1f} {rest[1]:8.1f}")
    cpu = sum(us(plain, stage) for stage in stages)
    wall = sum(us(plain, stage, True) for stage in stages)
    lines.append(f"{'total per message':42} {cpu:8.1f} {wall:8.1f}   (CPU: {1e6 / cpu:,.0f} messages/s on one core)")
    return "\n".join(lines)


def cprofile_report(store_factory: Callable[[], contextlib.AbstractContextManager[SqlStore]], route: Route,
                    raws: Sequence[bytes], batch: int, top: int, pstats_path: str | None) -> str:
    profiler = cProfile.Profile()
    with store_factory() as store:
        profiler.enable()
        run_round(store, route, raws, batch, split=False)
        profiler.disable()
    if pstats_path:
        profiler.dump_stats(pstats_path)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    out.write(f"cProfile of one round of {len(raws)} messages (calls are per round; divide by {len(raws)})\n")
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--messages", type=int, default=3000, help="messages per round (default 3000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each kind; medians are shown (default 3)")
    parser.add_argument("--batch", type=int, default=16, help="messages per store_batch (default 16)")
    parser.add_argument("--feed", choices=("pcd01", "fixtures"), default="pcd01")
    parser.add_argument("--cprofile", action="store_true", help="also profile one round with cProfile")
    parser.add_argument("--top", type=int, default=30, help="functions shown by --cprofile (default 30)")
    parser.add_argument("--pstats", help="with --cprofile: save the profile to this file")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL,
                        help=f"server for --db postgresql; a scratch database is made and dropped (default "
                             f"{DEFAULT_POSTGRES_URL})")
    args = parser.parse_args(argv)
    if args.messages < 1 or args.rounds < 1 or args.batch < 1:
        parser.error("--messages, --rounds and --batch must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    route = next(config.to_route() for config in load_routes(ROOT / "routes") if config.name == "default")
    make = pcd01_messages if args.feed == "pcd01" else fixture_messages

    def store_factory() -> contextlib.AbstractContextManager[SqlStore]:
        return fresh_store(args.db, args.postgres_url)

    plain: list[Round] = []
    timed: list[Round] = []
    for number in range(args.rounds):
        for split in (False, True):
            raws = make(args.messages, f"R{number}{'T' if split else 'P'}-{uuid.uuid4().hex[:6]}-")
            with store_factory() as store:
                (timed if split else plain).append(run_round(store, route, raws, args.batch, split))
    print(f"{args.db}, feed {args.feed}, {args.messages} messages a round in batches of {args.batch}, "
          f"{args.rounds} plain + {args.rounds} timed rounds; median of the rounds")
    print(stage_table(plain, timed, args.messages))
    rates = ", ".join(f"{args.messages / r.seconds:,.0f}" for r in plain)
    print(f"wall clock of the plain rounds: {rates} messages/s (one writer, no network)")
    if args.cprofile:
        raws = make(args.messages, f"C-{uuid.uuid4().hex[:6]}-")
        print()
        print(cprofile_report(store_factory, route, raws, args.batch, args.top, args.pstats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
