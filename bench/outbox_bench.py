"""Outbox delivery throughput to the mock EHR (SQLite, PostgreSQL) against zeep sending the same requests directly.

One run measures, for each worker count (default 1, then 4), every contender in turn on the same N records:

* outbox-sqlite: N observation rows queued through ``engine.channel.Channel`` (one route whose outbox holds an
  ``ehr`` OutboxTarget taking readings, not alerts) into a fresh SQLite file (WAL, synchronous=FULL); then an
  ``engine.outbox.OutboxWorker`` with one ``ehr`` Lane (concurrency = the worker count, the product's backoff and
  claim time) sends them with ``adapters.ehr_soap.EhrSoapSender``: claim (a write transaction), SOAP call, outcome
  and outbox_attempts row (a second write transaction), never two rows of one patient at once;
* outbox-postgres: the same on a fresh database of a PostgreSQL server (``--postgres-url``, else
  VITALS_TEST_POSTGRES_URL, else a private server from tests.servers, which runs with fsync=off);
* zeep-peer: the ceiling without a durable outbox: the same N requests (same keys, same payloads) sent by
  ``EhrSoapSender.send`` in a loop from 1 or 4 threads that take the next request from one shared list: no
  database, no claims, no record of the outcome, no order per patient.

The records: N stored messages (default 2,000), each a ~1.5 KB PCD-01 ORU^R01 with eight vitals
(bench/mllp_bench.py's Feed) for one of 50 patients in turn, so each outbox row is one RecordObservations call with
eight Observations, and the per-patient order constraint of the claim applies as in a ward. Queueing is not timed;
on PostgreSQL it is followed by ANALYZE (untimed too), as autovacuum would do within a minute: the planner takes a
never-analyzed table for empty and the claim then costs ~400 ms. The time runs from ``OutboxWorker.start()`` (peer:
the first thread started) until no row is PENDING or SENDING any more (polled every 20 ms; peer: the last thread
returned). ``deliveries/s`` is N / that time; ``p50``/``p99`` are nearest-rank percentiles of the per-delivery send
time, for the outbox from its outbox_attempts rows' ``duration_ms`` (whole milliseconds around ``sender.send``),
for the peer measured the same way and rounded the same.

The EHR: ``vitalsstream mock-ehr`` (adapters/mock_ehr/server.serve, the app and received log MockEhr runs), a
fresh state file and process per contender and worker count. It fsyncs every record before it answers, as
the product's mock does by default (durable=True), so each delivery costs the EHR one disk flush too. It runs
in its own process, as an EHR is another system: in this process its Spyne work would compete with the
worker's for one GIL (and MockEhr in a thread currently answers ~40 ms late: see bench/README.md).

Checks after every run: every outbox row SENT with exactly one attempt (outbox contenders), and the EHR's state
file holds exactly the N expected idempotency keys, each with calls == 1; for the outbox, each patient's records
arrived in queue order. The queued rows must equal the peer's requests (kind, key, patient and payload), so
every contender sends the same requests.

Usage: .venv/bin/python bench/outbox_bench.py [--rows N] [--workers 1,4] [--only sqlite,postgres,peer]
       [--postgres-url URL] [--json]
Exit status: 0 all good, 1 an error (a failed delivery, a check that does not hold, no progress for 30 s), 2
the mock EHR or PostgreSQL could not be started, 130 interrupted. Every server it starts is stopped before it
exits, and every database and file it creates is removed.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from mllp_bench import (
    HOST,
    ROOT,
    VITALSSTREAM,
    Feed,
    SetupError,
    _drop_database,
    _number,
    _percentile,
    _positive_ints,
    _resolve_postgres,
    _Snapshot,
    _start,
    code_version,
    free_port,
    ratio_rows,
    run_and_report,
)
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from adapters.ehr_soap import EhrSoapSender
from adapters.mock_ehr.state import ReceivedLog
from adapters.sql_store import OUTBOX_COLUMNS, SqlStore
from adapters.sql_tables import outbox, outbox_attempts
from engine.channel import Channel, Inbound, Route
from engine.migrations import upgrade
from engine.outbox import Lane, OutboxWorker
from engine.outbox_rows import OutboxTarget, observation_rows
from engine.senders import CLAIM_MARGIN_SECONDS
from transforms.hl7.charset import decode
from transforms.hl7.header import read_header
from transforms.hl7.parser import parse
from transforms.oru import transform

WSDL = ROOT / "wsdl" / "ehr.wsdl"
DEFAULT_ROWS = 2000
DEFAULT_WORKERS = (1, 4)
PATIENTS = 50
QUEUE_BATCH = 64  # messages per store transaction while queueing (as the MLLP group commit does)
SEND_TIMEOUT = 10.0  # the default route's EHR timeout_seconds
POLL_SECONDS = 0.02  # how often the outbox is asked whether everything was sent
STALL_SECONDS = 30.0  # no row sent for this long: the run stops with an error
NODE = "bench-node"
SHOWN_ERRORS = 5
EHR_DESCRIPTION = ("vitalsstream mock-ehr in its own process, a fresh state file per run, every record "
                   "fsync'd before it answers")

DESTINATION = "ehr"
ROUTE = Route(name="bench", outbox=(OutboxTarget(DESTINATION, readings=True, alerts=False),))
CONTENDERS = {"sqlite": "outbox-sqlite", "postgres": "outbox-postgres", "peer": "zeep-peer"}  # --only name: shown
PEER = CONTENDERS["peer"]
OUTBOXES = (CONTENDERS["sqlite"], CONTENDERS["postgres"])


# ----------------------------------------------------------------------------------------------------------
# The records
# ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Request:
    """One record as the EHR gets it: an outbox row's kind, idempotency key, patient and JSON payload."""

    kind: str
    key: str
    patient_id: str
    payload: str


def make_messages(rows: int, seed: int = 0) -> list[bytes]:
    """``rows`` PCD-01 messages with eight vitals each, for PATIENTS patients in turn."""
    feed = Feed(seed=seed, beds=PATIENTS)
    return [feed.next("OUTBOX-")[1] for _ in range(rows)]


def expected_requests(messages: Sequence[bytes]) -> list[Request]:
    """The outbox row each message gets in a fresh database (message ids 1, 2, ...), built without one."""
    now = datetime.now(UTC)
    requests = []
    for message_id, raw in enumerate(messages, 1):
        message = parse(decode(raw))
        readings = transform(message, read_header(message), ROUTE.oru, ROUTE.message_types)
        for row in observation_rows(ROUTE.outbox, ROUTE.name, message_id, readings, now):
            values = dict(zip(OUTBOX_COLUMNS, row, strict=True))
            requests.append(Request(values["kind"], values["idempotency_key"], values["patient_id"],
                                    values["payload"]))
    return requests


# ----------------------------------------------------------------------------------------------------------
# One run: a contender at a worker count
# ----------------------------------------------------------------------------------------------------------

@dataclass
class Run:
    contender: str
    workers: int
    rows: int
    seconds: float = 0.0
    durations_ms: list[int] = field(default_factory=list)  # per successful delivery
    errors: list[str] = field(default_factory=list)
    check: dict[str, object] = field(default_factory=dict)
    cpu: dict[str, float | None] = field(default_factory=dict)
    queue_seconds: float | None = None  # outbox: how long queueing took (not part of the rate)

    def summary(self) -> dict[str, object]:
        measured = sorted(ms / 1000 for ms in self.durations_ms)
        busy = self.cpu.get("client")  # % of one core used by this process: the worker (or the peer's threads)
        return {
            "contender": self.contender,
            "workers": self.workers,
            "rows": self.rows,
            "deliveries_per_second": round(self.rows / self.seconds, 1) if self.seconds > 0 else 0.0,
            "p50_ms": _percentile(measured, 50),
            "p99_ms": _percentile(measured, 99),
            "seconds": round(self.seconds, 3),
            "errors": len(self.errors),
            "cpu_ms_per_delivery": round(busy * 10 * self.seconds / self.rows, 2) if busy is not None else None,
            "queue_seconds": None if self.queue_seconds is None else round(self.queue_seconds, 3),
            **{f"{name}_cpu_percent": value for name, value in self.cpu.items()},
            "check": self.check,
            "error_examples": self.errors[:SHOWN_ERRORS],
        }


@dataclass
class Ehr:
    process: subprocess.Popen
    endpoint: str
    state: Path


def _answers(port: int) -> Callable[[], bool]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy

    def check() -> bool:
        try:
            with opener.open(f"http://{HOST}:{port}/control", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False
    return check


def start_ehr(stack: contextlib.ExitStack, workdir: Path, name: str) -> Ehr:
    """``vitalsstream mock-ehr`` on a free port with a fresh state file; stopped (SIGINT) when ``stack`` closes."""
    port, name = free_port(), f"{name}-{uuid.uuid4().hex[:8]}"  # unique, also when a worker count repeats
    state = workdir / f"ehr-{name}.jsonl"
    command = [str(VITALSSTREAM), "mock-ehr", "--host", HOST, "--port", str(port), "--state", str(state)]
    process = _start(stack, command, dict(os.environ), workdir / f"ehr-{name}.log", _answers(port),
                     f"mock EHR ({name})")
    return Ehr(process, f"http://{HOST}:{port}/ehr", state)


def queue(store: SqlStore, messages: Sequence[bytes]) -> float:
    """Store the messages through the channel (their outbox rows with them); seconds it took."""
    channel = Channel(store)
    started = time.perf_counter()
    for first in range(0, len(messages), QUEUE_BATCH):
        channel.dispatch_batch([Inbound(raw, ROUTE) for raw in messages[first:first + QUEUE_BATCH]])
    return time.perf_counter() - started


def analyze(store: SqlStore) -> None:
    """PostgreSQL: fresh statistics, as autovacuum gathers within a minute on a running server. A table that
    was never analyzed looks empty to the planner, and the claim's anti-join then takes ~400 ms per claim
    with 2,000 rows queued: that would measure autovacuum's timing, not the outbox."""
    with store.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")


def queued_differences(store: SqlStore, expected: Sequence[Request]) -> list[str]:
    """Where the queued rows differ from the peer's requests (nothing when all contenders send the same)."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(outbox.c.kind, outbox.c.idempotency_key, outbox.c.patient_id, outbox.c.payload)
                            .where(outbox.c.destination == DESTINATION).order_by(outbox.c.id)).all()
    queued = [Request(*row) for row in rows]
    if len(queued) != len(expected):
        return [f"{len(queued)} rows queued, {len(expected)} expected"]
    different = [ours.key for ours, theirs in zip(queued, expected, strict=True) if ours != theirs]
    return [f"queued row {key} differs from the peer's request" for key in different[:SHOWN_ERRORS]]


def wait_until_sent(store: SqlStore, ehr: Ehr, total: int) -> str | None:
    """Poll until no row waits or is in flight; an error when nothing moves for STALL_SECONDS or the EHR died."""
    waiting = select(func.count()).select_from(outbox).where(outbox.c.destination == DESTINATION,
                                                              outbox.c.state.in_(("PENDING", "SENDING")))
    left, moved = total, time.monotonic()
    while True:
        with store.engine.connect() as conn:
            now_left = conn.execute(waiting).scalar_one()
        if now_left == 0:
            return None
        if now_left != left:
            left, moved = now_left, time.monotonic()
        elif time.monotonic() - moved > STALL_SECONDS:
            return f"no row sent for {STALL_SECONDS:g} s, {left} of {total} still waiting"
        if ehr.process.poll() is not None:
            return f"the mock EHR exited (status {ehr.process.returncode}) with {left} rows still waiting"
        time.sleep(POLL_SECONDS)


def outbox_outcome(store: SqlStore, run: Run) -> dict[str, object]:
    """Row states and attempts after a run; fills in the run's send times and failed attempts."""
    with store.engine.connect() as conn:
        states = dict(conn.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state)).all())
        attempts = conn.execute(select(outbox_attempts.c.outcome, outbox_attempts.c.duration_ms,
                                       outbox_attempts.c.error).order_by(outbox_attempts.c.id)).all()
    run.durations_ms = [ms for outcome, ms, _ in attempts if outcome == "sent"]
    run.errors += [f"attempt {outcome}: {error}" for outcome, _, error in attempts if outcome != "sent"]
    return {"sent_rows": states.get("SENT", 0), "other_rows": sum(states.values()) - states.get("SENT", 0),
            "attempts": len(attempts)}


def received_check(state: Path, expected: Sequence[Request], ordered: bool) -> dict[str, object]:
    """What the EHR's state file holds against the expected records: each key once, one call each, and
    (``ordered``) each patient's records in queue order."""
    log = ReceivedLog.open(state)
    try:
        records = log.received()
    finally:
        log.close()
    keys = [record["idempotency_key"] for record in records]
    wanted = {request.key for request in expected}
    check: dict[str, object] = {
        "received": len(records), "distinct_keys": len(set(keys)), "missing": len(wanted - set(keys)),
        "unexpected": len(set(keys) - wanted), "repeated": sum(1 for r in records if r["calls"] != 1)}
    if ordered:
        check["out_of_order_patients"] = len(_out_of_order(records, expected))
    return check


def _out_of_order(records: Sequence[dict], expected: Sequence[Request]) -> set[str]:
    """Patients whose records the EHR received in another order than they were queued."""
    def by_patient(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for patient, key in pairs:
            found.setdefault(patient, []).append(key)
        return found
    queued = by_patient([(r.patient_id, r.key) for r in expected])
    arrived = by_patient([(r["patient_id"], r["idempotency_key"]) for r in records])
    return {patient for patient, keys in queued.items() if arrived.get(patient) != keys}


def judged(check: dict[str, object], rows: int) -> dict[str, object]:
    """``check`` with ``ok``: every record exactly once; for the outbox also every row SENT in one attempt, each
    patient's records in order."""
    once = (check["received"] == check["distinct_keys"] == rows
            and not (check["missing"] or check["unexpected"] or check["repeated"]))
    outbox_ok = (check.get("sent_rows", rows) == check.get("attempts", rows) == rows
                 and not (check.get("other_rows") or check.get("out_of_order_patients")))
    return {**check, "ok": once and outbox_ok}


def run_outbox(name: str, url: str, workers: int, messages: Sequence[bytes], expected: Sequence[Request],
               workdir: Path) -> Run:
    """Queue into the empty database at ``url``, then let an OutboxWorker deliver everything to a fresh EHR."""
    run = Run(name, workers, len(expected))
    store = SqlStore.from_url(url)
    try:
        upgrade(store.engine)
        run.queue_seconds = queue(store, messages)
        run.errors += queued_differences(store, expected)
        if store.dialect == "postgresql":
            analyze(store)
        with contextlib.ExitStack() as stack:
            ehr = start_ehr(stack, workdir, f"{name}-{workers}")
            lane = Lane(DESTINATION, EhrSoapSender(WSDL, ehr.endpoint, SEND_TIMEOUT), workers,
                        claim_seconds=SEND_TIMEOUT + CLAIM_MARGIN_SECONDS)
            worker = OutboxWorker(store, [lane], NODE)
            before = _Snapshot.take(ehr.process.pid, postgres=name == CONTENDERS["postgres"])
            try:
                worker.start()
                stalled = wait_until_sent(store, ehr, len(expected))
                after = _Snapshot.take(ehr.process.pid, postgres=name == CONTENDERS["postgres"])
            finally:
                worker.stop()
        run.seconds, run.cpu = after.at - before.at, before.usage(after)
        if stalled:
            run.errors.insert(0, stalled)
        outcome = outbox_outcome(store, run)
    finally:
        store.close()
    run.check = judged({**outcome, **received_check(ehr.state, expected, ordered=True)}, len(expected))
    return run


def run_peer(workers: int, expected: Sequence[Request], workdir: Path) -> Run:
    """The same requests straight from zeep: ``workers`` threads taking the next one from a shared list."""
    run = Run(PEER, workers, len(expected))
    pending, lock = iter(expected), threading.Lock()

    def send_all(sender: EhrSoapSender) -> None:
        while True:
            with lock:
                request = next(pending, None)
            if request is None:
                return
            started = time.monotonic()
            try:
                sender.send(request.kind, request.key, json.loads(request.payload))
            except Exception as error:  # counted and shown, as the outbox records a failed send
                run.errors.append(f"{request.key}: {getattr(error, 'reason', type(error).__name__)}")
                continue
            run.durations_ms.append(round((time.monotonic() - started) * 1000))

    with contextlib.ExitStack() as stack:
        ehr = start_ehr(stack, workdir, f"{PEER}-{workers}")
        sender = EhrSoapSender(WSDL, ehr.endpoint, SEND_TIMEOUT)
        stack.callback(sender.close)
        threads = [threading.Thread(target=send_all, args=(sender,), name=f"peer-{n}", daemon=True)
                   for n in range(workers)]
        before = _Snapshot.take(ehr.process.pid, postgres=False)
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        after = _Snapshot.take(ehr.process.pid, postgres=False)
    run.seconds, run.cpu = after.at - before.at, before.usage(after)
    run.check = judged(received_check(ehr.state, expected, ordered=False), len(expected))
    return run


# ----------------------------------------------------------------------------------------------------------
# PostgreSQL: one server, a fresh database per run
# ----------------------------------------------------------------------------------------------------------

@dataclass
class Postgres:
    server: str
    admin: psycopg.Connection
    description: str
    settings: dict[str, str]

    @contextlib.contextmanager
    def fresh_database(self) -> Iterator[str]:
        """A new empty database (its URL), dropped when the block ends."""
        name = f"vitals_outbox_bench_{uuid.uuid4().hex[:12]}"
        self.admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(self.server).set(database=name).render_as_string(hide_password=False)
        finally:
            _drop_database(self.admin, name)


def connect_postgres(stack: contextlib.ExitStack, url: str | None) -> Postgres:
    server, source = _resolve_postgres(stack, url)
    parsed = make_url(server)
    try:
        admin = psycopg.connect(host=parsed.host, port=parsed.port or 5432, user=parsed.username,
                                password=parsed.password, dbname=parsed.database or "postgres", autocommit=True,
                                connect_timeout=5)
    except psycopg.OperationalError as error:
        raise SetupError(f"PostgreSQL at {parsed.render_as_string(hide_password=True)} is not reachable: "
                         f"{error}") from None
    stack.callback(admin.close)
    settings = {setting: str(admin.execute(f"SHOW {setting}").fetchone()[0])  # type: ignore[index]
                for setting in ("fsync", "synchronous_commit", "server_version")}
    description = (f"{parsed.render_as_string(hide_password=True)} ({source}; PostgreSQL "
                   f"{settings['server_version']}, fsync={settings['fsync']}, "
                   f"synchronous_commit={settings['synchronous_commit']}), a fresh database per run")
    return Postgres(server, admin, description, {"postgres_source": source,
                                                 **{f"postgres_{k}": v for k, v in settings.items()}})


# ----------------------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------------------

def ratios(results: list[dict]) -> list[dict]:
    """Per worker count: each outbox's deliveries/s and p50 divided by the peer's."""
    return ratio_rows(results, "workers", "deliveries_per_second", OUTBOXES, PEER)


def _check_text(check: dict) -> str:
    if not check:
        return "-"
    verdict = "ok" if check["ok"] else "MISMATCH"
    text = f"{verdict}: {check['distinct_keys']} of {check['received']} keys distinct"
    text += f", {check['missing']} missing, {check['repeated']} sent twice"
    if "sent_rows" in check:
        text += f"; {check['sent_rows']} SENT in {check['attempts']} attempts"
    if "out_of_order_patients" in check:
        text += f"; {check['out_of_order_patients']} patients out of order"
    return text


def format_report(report: dict) -> str:
    settings = report["settings"]
    lines = [f"Outbox to the mock EHR: {settings['rows']:,} RecordObservations records (8 vitals each, "
             f"{settings['patients']} patients in turn, one record per stored PCD-01 message)",
             f"EHR: {settings['ehr']}",
             "time: worker start (peer: first thread) to the last record SENT; p50/p99: send time per delivery "
             "(whole ms); cpu ms/dlv: this process's CPU per delivery",
             f"engine code: {settings['code']}"]
    for name, description in report["contenders"].items():
        lines.append(f"  {name:<16} {description}")
    lines.append("")
    lines.append(f"{'contender':<16} {'workers':>7} {'deliveries/s':>12} {'p50 ms':>7} {'p99 ms':>7} "
                 f"{'seconds':>8} {'errors':>6} {'bench cpu':>9} {'cpu ms/dlv':>10} {'ehr cpu':>8} {'pg cpu':>7} "
                 f"{'machine':>8}  check")
    for r in report["results"]:
        lines.append(f"{r['contender']:<16} {r['workers']:>7} {_number(r['deliveries_per_second'], ',.1f', 12)} "
                     f"{_number(r['p50_ms'], '.0f', 7)} {_number(r['p99_ms'], '.0f', 7)} "
                     f"{_number(r['seconds'], '.2f', 8)} {r['errors']:>6} "
                     f"{_number(r.get('client_cpu_percent'), '.0f', 9, '%')} "
                     f"{_number(r['cpu_ms_per_delivery'], '.1f', 10)} "
                     f"{_number(r.get('server_cpu_percent'), '.0f', 8, '%')} "
                     f"{_number(r.get('database_cpu_percent'), '.0f', 7, '%')} "
                     f"{_number(r.get('machine_cpu_percent'), '.0f', 8, '%')}  {_check_text(r['check'])}")
    outboxes = [o for o in OUTBOXES if any(f"{o} / {PEER}" in row for row in report["ratios"])]
    if outboxes:
        lines.append("")
        lines.append(f"{'ratio to ' + PEER:<20} {'workers':>7} "
                     + " ".join(f"{o + ' deliveries/s':>30} {'p50':>7}" for o in outboxes))
        for row in report["ratios"]:
            cells = [f"{_number(row.get(f'{o} / {PEER}'), '.2f', 30, ' x')} "
                     f"{_number(row.get(f'{o} / {PEER} p50'), '.2f', 7, ' x')}" for o in outboxes]
            lines.append(f"{'':<20} {row['workers']:>7} " + " ".join(cells))
    for note in report["notes"]:
        lines.append(f"note: {note}")
    for problem in report["problems"]:
        lines.append(f"PROBLEM: {problem}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------------

def _contender_keys(text: str) -> list[str]:
    keys = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [key for key in keys if key not in CONTENDERS]
    if unknown or not keys:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(CONTENDERS)} (got {text!r})")
    return [key for key in CONTENDERS if key in keys]  # always the same order


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS,
                        help=f"records to deliver per contender and worker count (default {DEFAULT_ROWS})")
    parser.add_argument("--workers", type=_positive_ints, default=list(DEFAULT_WORKERS),
                        help="worker counts (the lane's concurrency; the peer's threads), comma-separated "
                             "(default 1,4)")
    parser.add_argument("--only", type=_contender_keys, default=list(CONTENDERS),
                        help="contenders, comma-separated: sqlite,postgres,peer (default all)")
    parser.add_argument("--postgres-url",
                        help="PostgreSQL server for outbox-postgres (a fresh database per run is created in it "
                             "and dropped); default VITALS_TEST_POSTGRES_URL, else a private fsync=off server")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be 1 or more")
    return args


DESCRIPTIONS = {
    "sqlite": "OutboxWorker, one ehr lane, EhrSoapSender; a fresh SQLite file per run (WAL, synchronous=FULL)",
    "postgres": "the same on {postgres}",
    "peer": "EhrSoapSender.send in a loop from N threads; no database, no order per patient",
}


def _one(key: str, workers: int, postgres: Postgres | None, messages: Sequence[bytes],
         expected: Sequence[Request], workdir: Path) -> Run:
    if key == "peer":
        return run_peer(workers, expected, workdir)
    if key == "sqlite":
        url = f"sqlite:///{workdir / f'outbox-{uuid.uuid4().hex[:8]}.db'}"
        return run_outbox(CONTENDERS[key], url, workers, messages, expected, workdir)
    assert postgres is not None
    with postgres.fresh_database() as url:
        return run_outbox(CONTENDERS[key], url, workers, messages, expected, workdir)


def run(args: argparse.Namespace) -> tuple[dict, int]:
    """Every contender at every worker count, each on a fresh EHR (and database); (report, exit status)."""
    settings: dict[str, object] = {"code": code_version()}
    messages = make_messages(args.rows)
    expected = expected_requests(messages)
    runs: list[Run] = []
    with contextlib.ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="vitals-outbox-bench-"))
        stack.callback(shutil.rmtree, workdir, True)
        postgres = None
        try:
            if "postgres" in args.only:
                postgres = connect_postgres(stack, args.postgres_url)
                settings.update(postgres.settings)
            for index, workers in enumerate(args.workers):
                shift = index % len(args.only)
                for key in args.only[shift:] + args.only[:shift]:
                    runs.append(_one(key, workers, postgres, messages, expected, workdir))
                    if not args.json:
                        print(f"... {runs[-1].contender}, {workers} worker(s): "
                              f"{runs[-1].summary()['deliveries_per_second']:,.1f} deliveries/s",
                              file=sys.stderr, flush=True)
        except (SetupError, OSError, subprocess.SubprocessError, psycopg.Error) as error:
            return {"problems": [str(error) if isinstance(error, SetupError)
                                 else f"{type(error).__name__}: {error}"]}, 2
    contenders = {CONTENDERS[key]: DESCRIPTIONS[key].format(postgres=postgres.description if postgres else "")
                  for key in args.only}
    return report_of(args, runs, contenders, settings)


def report_of(args: argparse.Namespace, runs: list[Run], contenders: dict[str, str],
              settings: dict[str, object]) -> tuple[dict, int]:
    results = [r.summary() for r in runs]
    for r in runs:
        for error in r.errors[:SHOWN_ERRORS]:
            print(f"ERROR {r.contender} with {r.workers} worker(s): {error}", file=sys.stderr)
    problems = [f"{r['contender']} with {r['workers']} worker(s): {_check_text(r['check'])}"
                for r in results if not r["check"].get("ok")]
    sharing = "the mock EHR and PostgreSQL" if "postgres" in args.only else "the mock EHR"
    notes = [f"this process (the outbox worker or the peer's threads) and {sharing} share this machine's "
             f"{os.cpu_count()} cores; compare ratios from one run, not rates across runs"]
    report = {
        "settings": {"rows": args.rows, "workers": args.workers, "patients": PATIENTS, "send_timeout": SEND_TIMEOUT,
                     "cores": os.cpu_count(), "ehr": EHR_DESCRIPTION, **settings},
        "contenders": contenders,
        "results": results,
        "ratios": ratios(results),
        "notes": notes,
        "problems": problems,
    }
    failed = problems or any(r["errors"] for r in results)
    return report, 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_and_report(_arguments(argv), run, format_report)


if __name__ == "__main__":
    sys.exit(main())
