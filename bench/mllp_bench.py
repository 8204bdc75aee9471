"""MLLP throughput and ACK latency of the running engine (SQLite, PostgreSQL) against python-hl7's asyncio server.

One run starts every contender, then drives each one with the same load, one connection count at a time:

* engine-sqlite: ``vitalsstream run`` on a fresh SQLite file (WAL, synchronous=FULL), the default route;
* engine-postgres: ``vitalsstream run`` on a fresh database of a PostgreSQL server (``--postgres-url``, else
  VITALS_TEST_POSTGRES_URL, else a private server from tests.servers, which runs with fsync=off);
* python-hl7: bench/peers/python_hl7_server.py, ``hl7.mllp.start_hl7_server`` answering ``create_ack()``
  (AA) to every message it parses, storing nothing: the server a Python team would start from.

The load: N persistent connections (one asyncio task each, in this process), each sending a message and
waiting for its ACK before sending the next, as bedside monitors do. Every message is a ~1.5 KB IHE PCD-01
ORU^R01 with eight MDC vitals (bench/transform_bench.py's typical_pcd01() as the template) and a unique MSH-10,
for one of several beds (patients), values mostly inside the alert bands with a few breaches. A level is a
warm-up, then a fixed time (or message count); latency runs from the first byte sent to the last byte of the
ACK. Every ACK must be AA for the message's own MSH-10; after each engine level every AA'd message must be in
the engine's database with status STORED. Contenders run in a rotating order within each connection count.

Usage: .venv/bin/python bench/mllp_bench.py [--connections 1,4,16] [--seconds S | --messages N]
       [--only sqlite,postgres,peer] [--postgres-url URL] [--json]
Exit status: 0 all good, 1 an error (an ACK that is not AA, a timeout, a stored-message mismatch), 2 a
contender could not be started, 130 interrupted. Every server it starts is stopped before it exits.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url
from transform_bench import typical_pcd01

from adapters.sql_tables import messages

ROOT = Path(__file__).resolve().parent.parent
PEER_SCRIPT = Path(__file__).resolve().parent / "peers" / "python_hl7_server.py"
VITALSSTREAM = Path(sys.executable).with_name("vitalsstream")  # the venv's console script
HOST = "127.0.0.1"  # every server listens here and every byte goes here

DEFAULT_CONNECTIONS = (1, 4, 16)
DEFAULT_SECONDS = 8.0
DEFAULT_WARMUP = 1.0
COUNT_MODE_CAP = 600.0  # --messages: a level that has not reached its count after this many seconds stops
ACK_TIMEOUT = 30.0  # a message without its ACK after this is an error, and its connection is closed
START_TIMEOUT = 60.0  # for a server to answer (engine: /healthz 200; peer: its port accepts)
STOP_TIMEOUT = 30.0  # after SIGINT, before SIGKILL
SATURATED = 85.0  # client CPU (% of one core) from which the client may be what limits the rate
SHOWN_ERRORS = 5  # examples of errors printed per contender and level

START_BLOCK, END_BLOCK = b"\x0b", b"\x1c\r"

CONTENDERS = {  # --only name: (display name, one-letter code used in the control ids)
    "sqlite": ("engine-sqlite", "S"),
    "postgres": ("engine-postgres", "P"),
    "peer": ("python-hl7", "H"),
}
PEER = "python-hl7"


# ----------------------------------------------------------------------------------------------------------
# The messages
# ----------------------------------------------------------------------------------------------------------

BEDS = 24  # patients, each on its own monitor (device EUI-64); messages go to the beds in turn
REPORT_INTERVAL = timedelta(seconds=60)  # a bed's observation clock advances this much per message
BREACH_SHARE = 0.03  # share of messages with one vital outside its alert band
FIRST_OBSERVATION = datetime(2025, 3, 14, 6, 0, tzinfo=UTC)

# Vitals in typical_pcd01()'s order, each with a breach value (outside the default alert band) and its flag.
_VITALS = ("heart_rate", "spo2", "pulse_rate", "resp_rate", "temperature", "bp_systolic", "bp_diastolic",
           "bp_mean")
_BREACHES = (("heart_rate", "128", "H"), ("heart_rate", "146", "H"), ("spo2", "92", "L"), ("spo2", "87", "L"),
             ("resp_rate", "27", "H"), ("temperature", "38.6", "H"), ("bp_systolic", "171", "H"),
             ("bp_diastolic", "46", "L"), ("bp_mean", "60", "L"))
_FAMILY = ("Nguyen", "Schmidt", "Okafor", "Rossi", "Kowalski", "Haddad", "Lindqvist", "Moreau", "Tanaka", "Silva")
_GIVEN = ("Lan", "Anna", "Chidi", "Marco", "Ewa", "Omar", "Sven", "Claire", "Yuki", "Joao")


def _template() -> str:
    """typical_pcd01() with the fields that change per message turned into str.format placeholders."""
    segments = [segment.split("|") for segment in typical_pcd01().decode("ascii").split("\r") if segment]
    names = [segment[0] for segment in segments]
    if names != ["MSH", "PID", "PV1", "OBR"] + ["OBX"] * 9:
        raise RuntimeError(f"typical_pcd01() changed shape ({names}); update bench/mllp_bench.py")
    msh, pid, pv1, obr, mds, *vitals = segments
    order = "{order}^MONITOR^{eui}^EUI-64"
    msh[2], msh[6], msh[9] = "MONITOR^{eui}^EUI-64", "{sent}", "{control_id}"  # MSH-3, MSH-7, MSH-10
    pid[3], pid[5], pid[7] = "{mrn}^^^HOSP^MR", "{family}^{given}^^^^^L", "{birth}"
    pv1[3] = "ICU-3^BED-{bed:02d}^1"
    obr[2], obr[3], obr[7] = order, order, "{sent}"
    mds[14], mds[18] = "{sent}", "{eui}^EUI-64"
    for number, obx in enumerate(vitals):
        obx[5], obx[8], obx[14] = f"{{v{number}}}", f"{{f{number}}}", "{observed}"  # OBX-5, OBX-8, OBX-14
    return "\r".join("|".join(segment) for segment in segments) + "\r"


@dataclass
class _Bed:
    number: int
    mrn: str
    eui: str
    family: str
    given: str
    birth: str
    heart_rate: int  # this patient's baseline
    systolic: int
    clock: datetime


class Feed:
    """Messages for one contender: unique MSH-10, beds in turn, each bed's clock a report interval on.

    Values wander around each patient's baseline, inside the default alert bands, except for about
    BREACH_SHARE of the messages, which carry one vital outside its band (warning or critical).
    """

    def __init__(self, seed: int = 0, beds: int = BEDS):
        self._random = random.Random(seed)
        self._template = _template()
        self._beds = [self._bed(number) for number in range(1, beds + 1)]
        self.sent = 0

    def _bed(self, number: int) -> _Bed:
        r = self._random
        return _Bed(number, f"MRN-{700000 + number:06d}", f"0012AB34CD{number:06X}", r.choice(_FAMILY),
                    r.choice(_GIVEN), f"19{r.randint(35, 99)}{r.randint(1, 12):02d}{r.randint(1, 28):02d}",
                    r.randint(62, 92), r.randint(108, 138), FIRST_OBSERVATION + timedelta(seconds=7 * number))

    def next(self, prefix: str) -> tuple[str, bytes]:
        """(control id, message bytes) of the next message; the control id is ``prefix`` + a sequence number."""
        self.sent += 1
        control_id = f"{prefix}{self.sent:07d}"
        bed = self._beds[self.sent % len(self._beds)]
        bed.clock += REPORT_INTERVAL
        observed = bed.clock.strftime("%Y%m%d%H%M%S+0000")
        sent = (bed.clock + timedelta(seconds=2)).strftime("%Y%m%d%H%M%S+0000")
        r = self._random
        heart_rate = bed.heart_rate + r.randint(-5, 5)
        systolic, diastolic = bed.systolic + r.randint(-6, 6), r.randint(62, 84)
        values = [str(heart_rate), str(r.randint(95, 99)), str(heart_rate + r.randint(-2, 2)), str(r.randint(12, 20)),
                  f"{r.uniform(36.4, 37.6):.1f}", str(systolic), str(diastolic), str((systolic + 2 * diastolic) // 3)]
        flags = ["N"] * len(values)
        if r.random() < BREACH_SHARE:
            vital, value, flag = r.choice(_BREACHES)
            index = _VITALS.index(vital)
            values[index], flags[index] = value, flag
        text = self._template.format(
            control_id=control_id, order=control_id, eui=bed.eui, sent=sent, observed=observed, mrn=bed.mrn,
            family=bed.family, given=bed.given, birth=bed.birth, bed=bed.number,
            **{f"v{n}": v for n, v in enumerate(values)}, **{f"f{n}": f for n, f in enumerate(flags)})
        return control_id, text.encode("ascii")


def msa(ack: bytes) -> tuple[str, str]:
    """(MSA-1, MSA-2) of an ACK payload: its code and the control id it acknowledges; ("", "") without MSA."""
    text = ack.decode("ascii", "replace")
    separator = text[3:4] or "|"
    for segment in text.replace("\n", "\r").split("\r"):
        if segment.startswith("MSA" + separator):
            fields = segment.split(separator)
            return (fields[1] if len(fields) > 1 else ""), (fields[2] if len(fields) > 2 else "")
    return "", ""


# ----------------------------------------------------------------------------------------------------------
# The load generator
# ----------------------------------------------------------------------------------------------------------

class _AckProtocol(asyncio.Protocol):
    """The client side of one connection: frames out, complete ACK frames in, with their arrival times."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.frames: list[tuple[bytes, float]] = []  # (payload, perf_counter when its last byte arrived)
        self.waiter: asyncio.Future[None] | None = None
        self.lost: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.buffer += data
        while True:
            end = self.buffer.find(END_BLOCK)
            if end < 0:
                break
            start = self.buffer.find(START_BLOCK, 0, end)
            self.frames.append((bytes(self.buffer[start + 1:end]) if start >= 0 else b"", now))
            del self.buffer[:end + len(END_BLOCK)]
        if self.frames:
            self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionResetError("the server closed the connection")
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def exchange(self, payload: bytes) -> tuple[bytes, float, float]:
        """Send one message; (application ACK payload, send time, ACK arrival time). CA/CE/CR are skipped."""
        assert self.transport is not None
        started = time.perf_counter()
        self.transport.write(START_BLOCK + payload + END_BLOCK)
        while True:
            while not self.frames:
                if self.lost is not None:
                    raise ConnectionError(f"connection lost before the ACK: {self.lost!r}")
                self.waiter = asyncio.get_running_loop().create_future()
                await self.waiter
            ack, arrived = self.frames.pop(0)
            if not msa(ack)[0].startswith("C"):  # an enhanced-mode commit ACK comes before the application ACK
                return ack, started, arrived


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a process, its threads and its child processes (the engine's store
    process) while they run (Linux /proc), None when unknown."""
    if pid is None:
        return None
    total, found = 0.0, False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # the process has ended
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):  # fields[1]: the parent's pid
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            found = True
    return total if found else None


def _postgres_cpu_seconds() -> float | None:
    """CPU seconds of every process named postgres on this machine (the server and its backends)."""
    total, found = 0.0, False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process has ended
            continue
        if text[text.find("(") + 1:text.rfind(")")] == "postgres":
            fields = text.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            found = True
    return total if found else None


def _machine_ticks() -> tuple[int, int] | None:
    """(busy, total) clock ticks of all cores since boot (Linux /proc/stat), None when unknown."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values[:8]) - idle, sum(values[:8])


@dataclass
class _Snapshot:
    at: float
    client: float
    server: float | None
    database: float | None
    machine: tuple[int, int] | None

    @classmethod
    def take(cls, server_pid: int | None, postgres: bool) -> _Snapshot:
        return cls(time.perf_counter(), time.process_time(), _cpu_seconds(server_pid),
                   _postgres_cpu_seconds() if postgres else None, _machine_ticks())

    def usage(self, end: _Snapshot) -> dict[str, float | None]:
        """CPU from here to ``end``: client, server and database in % of one core, machine in % of all cores."""
        wall = end.at - self.at
        if wall <= 0:
            return {"client": None, "server": None, "database": None, "machine": None}

        def percent(start: float | None, stop: float | None) -> float | None:
            return None if start is None or stop is None else round(100 * (stop - start) / wall, 1)
        machine = None
        if self.machine and end.machine and end.machine[1] > self.machine[1]:
            machine = round(100 * (end.machine[0] - self.machine[0]) / (end.machine[1] - self.machine[1]), 1)
        return {"client": percent(self.client, end.client), "server": percent(self.server, end.server),
                "database": percent(self.database, end.database), "machine": machine}


@dataclass
class Level:
    """Everything one contender did at one connection count."""

    contender: str
    connections: int
    prefix: str  # of every control id sent at this level
    sent: int = 0
    acked: list[str] = field(default_factory=list)  # control ids answered AA (warm-up included)
    unanswered: list[str] = field(default_factory=list)  # sent, no ACK (timeout, connection lost)
    errors: list[str] = field(default_factory=list)  # one line per error, worst first in the report
    timings: list[tuple[float, float]] = field(default_factory=list)  # (sent, ACK arrived) of AA'd messages
    window: tuple[float, float] = (0.0, 0.0)  # the measured part: after the warm-up, up to the end
    cpu: dict[str, float | None] = field(default_factory=dict)
    store: dict[str, object] = field(default_factory=dict)  # the database check (engines only)

    def summary(self) -> dict[str, object]:
        start, end = self.window
        measured = sorted(done - sent for sent, done in self.timings if start <= done <= end)
        elapsed = end - start
        return {
            "contender": self.contender,
            "connections": self.connections,
            "messages_per_second": round(len(measured) / elapsed, 1) if elapsed > 0 else 0.0,
            "p50_ms": _percentile(measured, 50),
            "p99_ms": _percentile(measured, 99),
            "errors": len(self.errors),
            "measured_messages": len(measured),
            "measured_seconds": round(elapsed, 3),
            "sent": self.sent,
            "acked": len(self.acked),
            **{f"{name}_cpu_percent": value for name, value in self.cpu.items()},
            "store": self.store or None,
            "error_examples": self.errors[:SHOWN_ERRORS],
        }


def _percentile(sorted_seconds: list[float], percent: float) -> float | None:
    """Nearest-rank percentile, in milliseconds (None without samples)."""
    if not sorted_seconds:
        return None
    rank = max(1, math.ceil(percent / 100 * len(sorted_seconds)))
    return round(1000 * sorted_seconds[rank - 1], 3)


async def drive(port: int, feed: Feed, level: Level, warmup: float, seconds: float | None,
                count: int | None, server_pid: int | None, postgres: bool = False) -> None:
    """Run one level: ``level.connections`` senders for ``warmup`` + ``seconds`` (or until ``count`` ACKs).

    CPU is measured over the measured window: this process, the server process (``server_pid``, with its
    child processes), every
    postgres process when ``postgres``, and the whole machine."""
    loop = asyncio.get_running_loop()
    began = time.perf_counter()
    deadline = began + warmup + (seconds if count is None else COUNT_MODE_CAP)
    finished = loop.create_future()  # set when the measured window ends
    marks: dict[str, _Snapshot] = {}
    counted = 0

    def start_measuring() -> None:
        marks["start"] = _Snapshot.take(server_pid, postgres)

    def stop_measuring() -> None:
        if not finished.done():
            marks["end"] = _Snapshot.take(server_pid, postgres)
            finished.set_result(None)

    timers = [loop.call_later(warmup, start_measuring), loop.call_later(deadline - began, stop_measuring)]

    async def sender(number: int) -> None:
        nonlocal counted
        try:
            _, protocol = await loop.create_connection(_AckProtocol, HOST, port)
        except OSError as error:
            level.errors.append(f"connection {number}: cannot connect: {error}")
            return
        try:
            while not finished.done():
                control_id, payload = feed.next(level.prefix)
                level.sent += 1
                try:
                    async with asyncio.timeout(ACK_TIMEOUT):
                        ack, sent, arrived = await protocol.exchange(payload)
                except (TimeoutError, ConnectionError) as error:
                    level.unanswered.append(control_id)
                    reason = f"no ACK within {ACK_TIMEOUT:g} s" if isinstance(error, TimeoutError) else str(error)
                    level.errors.append(f"{control_id}: {reason}; connection {number} closed")
                    return
                code, echoed = msa(ack)
                if code != "AA" or echoed != control_id:
                    level.errors.append(f"{control_id}: ACK {code or 'without MSA'} for {echoed!r}: "
                                        + ack.decode("ascii", "replace").replace("\r", " | ")[:300])
                    continue
                level.acked.append(control_id)
                level.timings.append((sent, arrived))
                if count is not None and "start" in marks and arrived >= marks["start"].at:
                    counted += 1
                    if counted >= count:
                        stop_measuring()
        finally:
            assert protocol.transport is not None
            protocol.transport.close()

    try:
        await asyncio.gather(*(sender(n) for n in range(1, level.connections + 1)))
    finally:
        for timer in timers:
            timer.cancel()
    stop_measuring()  # every sender gave up early (errors): the window ends now
    start, end = marks.get("start"), marks["end"]
    if start is None:  # the level ended before its warm-up did
        level.window, level.cpu = (end.at, end.at), {}
        return
    level.window = (start.at, end.at)
    level.cpu = start.usage(end)


# ----------------------------------------------------------------------------------------------------------
# The contenders' servers
# ----------------------------------------------------------------------------------------------------------

class SetupError(Exception):
    """A contender could not be started (or its database could not be prepared)."""


@dataclass
class Target:
    name: str  # display name
    code: str  # one letter, in the control ids
    port: int
    description: str
    process: subprocess.Popen | None = None
    db_url: str | None = None  # engines: where the messages must end up
    settings: dict[str, str] = field(default_factory=dict)  # facts worth reporting (PostgreSQL's fsync, ...)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _start(stack: contextlib.ExitStack, command: list[str], env: dict[str, str], log: Path,
           ready: Callable[[], bool], what: str) -> subprocess.Popen:
    """Start a server in its own session (a terminal's Ctrl-C reaches only us), stopped when ``stack`` closes;
    returns once ``ready()`` holds."""
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    stack.callback(_stop, process, what)
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        if process.poll() is not None:
            raise SetupError(f"{what} exited with status {process.returncode} while starting:\n{_log_tail(log)}")
        if time.monotonic() > deadline:
            raise SetupError(f"{what} did not answer within {START_TIMEOUT:g} s:\n{_log_tail(log)}")
        time.sleep(0.1)
    return process


def _stop(process: subprocess.Popen, what: str) -> None:
    """SIGINT (the engine's and the peer's clean stop), then SIGKILL if it takes longer than STOP_TIMEOUT."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            print(f"{what} did not stop within {STOP_TIMEOUT:g} s of SIGINT; killing it", file=sys.stderr)
            process.kill()
            process.wait()
    if process.returncode not in (0, -signal.SIGINT):
        print(f"{what} exited with status {process.returncode}", file=sys.stderr)


def _healthy(port: int) -> Callable[[], bool]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy

    def check() -> bool:
        try:
            with opener.open(f"http://{HOST}:{port}/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False
    return check


def _accepting(port: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return True
        except OSError:
            return False
    return check


def start_peer(stack: contextlib.ExitStack, workdir: Path) -> Target:
    port = free_port()
    process = _start(stack, [sys.executable, str(PEER_SCRIPT), "--host", HOST, "--port", str(port)],
                     dict(os.environ), workdir / "python-hl7.log", _accepting(port), PEER)
    return Target(PEER, CONTENDERS["peer"][1], port, "bench/peers/python_hl7_server.py (python-hl7 "
                  f"{importlib.metadata.version('hl7')}: hl7.parse + create_ack, stores nothing)", process)


def start_engine(stack: contextlib.ExitStack, key: str, db_url: str, workdir: Path, description: str) -> Target:
    name, code = CONTENDERS[key]
    mllp_port, http_port = free_port(), free_port()
    env = {**os.environ, "VITALS_DB_URL": db_url, "VITALS_MLLP_HOST": HOST, "VITALS_MLLP_PORT": str(mllp_port),
           "VITALS_HTTP_HOST": HOST, "VITALS_HTTP_PORT": str(http_port), "VITALS_ROUTES": str(ROOT / "routes")}
    process = _start(stack, [str(VITALSSTREAM), "run"], env, workdir / f"{name}.log", _healthy(http_port), name)
    return Target(name, code, mllp_port, description, process, db_url)


def _resolve_postgres(stack: contextlib.ExitStack, url: str | None) -> tuple[str, str]:
    """(server URL, where it came from): --postgres-url, VITALS_TEST_POSTGRES_URL, or a private server."""
    if url:
        return url, "--postgres-url"
    if os.environ.get("VITALS_TEST_POSTGRES_URL"):
        return os.environ["VITALS_TEST_POSTGRES_URL"], "VITALS_TEST_POSTGRES_URL"
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import pytest

    from tests.servers import private_postgres

    try:
        return stack.enter_context(private_postgres()), "private server (tests.servers.private_postgres)"
    except (pytest.skip.Exception, pytest.fail.Exception) as error:
        raise SetupError(f"no PostgreSQL: {error}; pass --postgres-url or leave postgres out (--only)") from None


def start_postgres_engine(stack: contextlib.ExitStack, url: str | None, workdir: Path) -> Target:
    """A fresh database on the server (dropped at the end), upgraded by `vitalsstream db upgrade`, then the engine."""
    server, source = _resolve_postgres(stack, url)
    parsed = make_url(server)
    name = f"vitals_bench_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(host=parsed.host, port=parsed.port or 5432, user=parsed.username,
                                password=parsed.password, dbname=parsed.database or "postgres", autocommit=True,
                                connect_timeout=5)
    except psycopg.OperationalError as error:
        raise SetupError(f"PostgreSQL at {parsed.render_as_string(hide_password=True)} is not reachable: "
                         f"{error}") from None
    stack.callback(admin.close)
    settings = {setting: admin.execute(f"SHOW {setting}").fetchone()[0]  # type: ignore[index]
                for setting in ("fsync", "synchronous_commit", "server_version")}
    admin.execute(f'CREATE DATABASE "{name}"')
    stack.callback(_drop_database, admin, name)
    db_url = parsed.set(database=name).render_as_string(hide_password=False)
    upgraded = subprocess.run([str(VITALSSTREAM), "db", "upgrade"], env={**os.environ, "VITALS_DB_URL": db_url},
                              cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    if upgraded.returncode != 0:
        raise SetupError(f"vitalsstream db upgrade failed:\n{upgraded.stdout}{upgraded.stderr}")
    shown = parsed.set(database=name).render_as_string(hide_password=True)
    description = (f"{shown} ({source}; PostgreSQL {settings['server_version']}, fsync={settings['fsync']}, "
                   f"synchronous_commit={settings['synchronous_commit']})")
    target = start_engine(stack, "postgres", db_url, workdir, description)
    target.settings = {"postgres_source": source, **{f"postgres_{k}": str(v) for k, v in settings.items()}}
    return target


def _drop_database(admin: psycopg.Connection, name: str) -> None:
    try:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.Error as error:
        print(f"could not drop the benchmark database {name}: {error}", file=sys.stderr)


# ----------------------------------------------------------------------------------------------------------
# The database check
# ----------------------------------------------------------------------------------------------------------

def check_store(db_url: str, level: Level) -> dict[str, object]:
    """Rows in ``messages`` for this level's control ids: every AA'd message must be there, STORED."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(messages.c.control_id, messages.c.status)
                                .where(messages.c.control_id.like(level.prefix + "%"))).all()
    finally:
        engine.dispose()
    status = {control_id: state for control_id, state in rows}
    missing = [cid for cid in level.acked if status.get(cid) != "STORED"]
    extra = sorted(set(status) - set(level.acked) - set(level.unanswered))
    for cid in missing[:SHOWN_ERRORS]:
        found = f"stored as {status[cid]}" if cid in status else "not stored"
        level.errors.insert(0, f"{cid}: answered AA but {found}")
    if len(missing) > SHOWN_ERRORS:
        level.errors[SHOWN_ERRORS:SHOWN_ERRORS] = [f"... and {len(missing) - SHOWN_ERRORS} more AA'd messages "
                                                   "missing from the database"]
    level.errors += [f"{cid}: in the database ({status[cid]}) but never sent or not answered AA" for cid in extra]
    return {"rows": len(rows), "acked": len(level.acked), "missing": len(missing), "unexpected": len(extra),
            "stored_without_ack": sum(1 for cid in level.unanswered if cid in status),
            "ok": not missing and not extra}


# ----------------------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------------------

def ratio_rows(results: list[dict], level: str, rate: str, engines: Sequence[str], peer: str) -> list[dict]:
    """Per load level (``level``: connections, clients): each engine's ``rate`` and p50 divided by the peer's."""
    rows = []
    for value in sorted({r[level] for r in results}):
        at = {r["contender"]: r for r in results if r[level] == value}
        reference = at.get(peer)
        if not reference:
            continue
        row: dict[str, object] = {level: value}
        for engine in engines:
            ours = at.get(engine)
            if ours is None:
                continue
            row[f"{engine} / {peer}"] = (round(ours[rate] / reference[rate], 3) if reference[rate] else None)
            row[f"{engine} / {peer} p50"] = (round(ours["p50_ms"] / reference["p50_ms"], 2)
                                             if ours["p50_ms"] and reference["p50_ms"] else None)
        rows.append(row)
    return rows


def ratios(results: list[dict]) -> list[dict]:
    """Per connection count: each engine's messages/s and p50 divided by python-hl7's."""
    return ratio_rows(results, "connections", "messages_per_second", ("engine-sqlite", "engine-postgres"), PEER)


def _number(value: object, spec: str, width: int, suffix: str = "") -> str:
    """``value`` formatted and right-aligned in ``width`` (suffix included), or '-' when it is unknown."""
    if not isinstance(value, int | float):
        return f"{'-':>{width}}"
    return f"{value:{width - len(suffix)}{spec}}{suffix}"


def format_report(report: dict) -> str:
    settings = report["settings"]
    budget = (f"{settings['seconds']:g} s" if settings["messages"] is None
              else f"{settings['messages']} messages (at most {COUNT_MODE_CAP:g} s)")
    lines = [f"MLLP load: PCD-01 ORU^R01 of ~{settings['message_bytes']:,} bytes (8 MDC vitals, unique MSH-10, "
             f"{BEDS} beds); each connection waits for its ACK; per level {settings['warmup']:g} s warm-up + {budget}",
             f"latency: first byte sent to last ACK byte received; client: {settings['client']}",
             f"engine code: {settings['code']}"]
    for name, description in report["contenders"].items():
        lines.append(f"  {name:<16} {description}")
    lines.append("")
    lines.append(f"{'contender':<16} {'conns':>5} {'messages/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} "
                 f"{'client cpu':>10} {'server cpu':>10} {'pg cpu':>7} {'machine':>8}  database check")
    for r in report["results"]:
        store = r["store"]
        check = ("-" if store is None else
                 f"{'ok' if store['ok'] else 'MISMATCH'}: {store['rows']} rows, {store['acked']} AA, "
                 f"{store['missing']} missing")
        lines.append(f"{r['contender']:<16} {r['connections']:>5} {_number(r['messages_per_second'], ',.0f', 11)} "
                     f"{_number(r['p50_ms'], '.2f', 8)} {_number(r['p99_ms'], '.2f', 8)} {r['errors']:>6} "
                     f"{_number(r.get('client_cpu_percent'), '.0f', 10, '%')} "
                     f"{_number(r.get('server_cpu_percent'), '.0f', 10, '%')} "
                     f"{_number(r.get('database_cpu_percent'), '.0f', 7, '%')} "
                     f"{_number(r.get('machine_cpu_percent'), '.0f', 8, '%')}  {check}")
    if report["ratios"]:
        engines = [e for e in ("engine-sqlite", "engine-postgres")
                   if any(f"{e} / {PEER}" in row for row in report["ratios"])]
        lines.append("")
        lines.append(f"{'ratio to ' + PEER:<20} {'conns':>5} "
                     + " ".join(f"{e + ' msg/s':>22} {'p50':>7}" for e in engines))
        for row in report["ratios"]:
            cells = [f"{_number(row.get(f'{e} / {PEER}'), '.2f', 22, ' x')} "
                     f"{_number(row.get(f'{e} / {PEER} p50'), '.2f', 7, ' x')}" for e in engines]
            lines.append(f"{'':<20} {row['connections']:>5} " + " ".join(cells))
    for note in report["notes"]:
        lines.append(f"note: {note}")
    for problem in report["problems"]:
        lines.append(f"PROBLEM: {problem}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------------

def _positive_ints(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of whole numbers: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("connection counts must be 1 or more")
    return values


def _contender_keys(text: str) -> list[str]:
    keys = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [key for key in keys if key not in CONTENDERS]
    if unknown or not keys:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(CONTENDERS)} (got {text!r})")
    return [key for key in CONTENDERS if key in keys]  # always the same order


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=_positive_ints, default=list(DEFAULT_CONNECTIONS),
                        help="connection counts to run, comma-separated (default 1,4,16)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--seconds", type=float, default=DEFAULT_SECONDS,
                        help=f"measured seconds per contender and connection count (default {DEFAULT_SECONDS:g})")
    budget.add_argument("--messages", type=int, help="instead of --seconds: measured ACKs per contender and level")
    parser.add_argument("--warmup", type=float, default=DEFAULT_WARMUP,
                        help=f"seconds of unmeasured load before each level (default {DEFAULT_WARMUP:g})")
    parser.add_argument("--only", type=_contender_keys, default=list(CONTENDERS),
                        help="contenders, comma-separated: sqlite,postgres,peer (default all)")
    parser.add_argument("--postgres-url",
                        help="PostgreSQL server for engine-postgres (a fresh database is created in it and "
                             "dropped); default VITALS_TEST_POSTGRES_URL, else a private fsync=off server")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.warmup < 0 or (args.messages is not None and args.messages < 1):
        parser.error("--seconds and --messages must be positive, --warmup not negative")
    return args


def code_version() -> str:
    """The commit under test, and which files outside bench/ and tests/ differ from it (the engine measured)."""
    def git(*arguments: str) -> str:
        try:
            return subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, text=True, timeout=10,
                                  check=True).stdout.rstrip("\n")
        except (OSError, subprocess.SubprocessError):
            return ""
    commit = git("rev-parse", "--short", "HEAD") or "unknown commit"
    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
               if not line[3:].startswith(("bench/", "tests/"))]
    return f"{commit} + uncommitted changes in {', '.join(changed)}" if changed else commit


def run(args: argparse.Namespace) -> tuple[dict, int]:
    """Start the contenders, drive every level, check the databases, stop everything; (report, exit status)."""
    run_id = uuid.uuid4().hex[:4]
    version = code_version()
    problems: list[str] = []
    levels: list[Level] = []
    contenders: dict[str, str] = {}
    extra_settings: dict[str, object] = {}
    with contextlib.ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="vitals-mllp-bench-"))
        stack.callback(shutil.rmtree, workdir, True)
        targets: list[Target] = []
        try:
            for key in args.only:
                if key == "peer":
                    targets.append(start_peer(stack, workdir))
                elif key == "sqlite":
                    db = workdir / "bench.db"
                    targets.append(start_engine(stack, key, f"sqlite:///{db}", workdir,
                                                f"sqlite:///{db} (WAL, synchronous=FULL)"))
                else:
                    targets.append(start_postgres_engine(stack, args.postgres_url, workdir))
                    extra_settings.update(targets[-1].settings)
        except (SetupError, OSError, subprocess.SubprocessError, psycopg.Error) as error:
            return {"problems": [f"{type(error).__name__}: {error}" if not isinstance(error, SetupError)
                                 else str(error)]}, 2
        feeds = {target.name: Feed(seed=number) for number, target in enumerate(targets)}
        contenders.update({target.name: target.description for target in targets})
        for index, connections in enumerate(args.connections):
            shift = index % len(targets)
            for target in targets[shift:] + targets[:shift]:
                level = Level(target.name, connections, f"{run_id}-{target.code}{connections}-")
                pid = target.process.pid if target.process else None
                asyncio.run(drive(target.port, feeds[target.name], level, args.warmup, args.seconds, args.messages, pid,
                                  postgres=target.name == "engine-postgres"))
                if target.db_url is not None:
                    level.store = check_store(target.db_url, level)
                    if not level.store["ok"]:
                        problems.append(f"{target.name} at {connections} connections: {level.store['missing']} AA'd "
                                        f"messages not STORED, {level.store['unexpected']} unexpected rows")
                if target.process is not None and target.process.poll() is not None:
                    problems.append(f"{target.name} exited (status {target.process.returncode}) during the run")
                levels.append(level)
                if not args.json:
                    print(f"... {target.name}, {connections} connection(s): "
                          f"{level.summary()['messages_per_second']:,.0f} messages/s", file=sys.stderr, flush=True)
        message_bytes = len(Feed().next(f"{run_id}-X-")[1])
    results = [level.summary() for level in levels]
    for level in levels:
        for error in level.errors[:SHOWN_ERRORS]:
            print(f"ERROR {level.contender} at {level.connections} connections: {error}", file=sys.stderr)
    notes = []
    busy = [r for r in results if (r.get("client_cpu_percent") or 0) >= SATURATED]
    if busy:
        notes.append("the client used >= {:.0f}% of a core at {}: the load generator may limit those rates".format(
            SATURATED, ", ".join(f"{r['contender']}/{r['connections']}" for r in busy)))
    notes.append(f"client and servers share this machine's {os.cpu_count()} cores: the rates are what is left "
                 "beside the load generator; compare ratios from one run, not rates across runs")
    if args.messages is not None:
        short = [r for r in results if r["measured_messages"] < args.messages]
        problems += [f"{r['contender']} at {r['connections']} connections: only {r['measured_messages']} of "
                     f"{args.messages} messages within {COUNT_MODE_CAP:g} s" for r in short]
    report = {
        "settings": {"connections": args.connections, "seconds": None if args.messages else args.seconds,
                     "messages": args.messages, "warmup": args.warmup, "message_bytes": message_bytes,
                     "beds": BEDS, "ack_timeout": ACK_TIMEOUT, "run_id": run_id, "cores": os.cpu_count(),
                     "client": "one asyncio process, one task per connection", "code": version,
                     **extra_settings},
        "contenders": contenders,
        "results": results,
        "ratios": ratios(results),
        "notes": notes,
        "problems": problems,
    }
    failed = problems or any(r["errors"] for r in results)
    return report, 1 if failed else 0


def _terminated(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # SIGTERM: the same clean stop as Ctrl-C


def run_and_report(args: argparse.Namespace, run: Callable[[argparse.Namespace], tuple[dict, int]],
                   format_report: Callable[[dict], str]) -> int:
    """The benchmarks' main: run, stop cleanly on Ctrl-C or SIGTERM (130), print the table or JSON.
    Exit status: 0 all well, 1 any error, 2 a server could not start."""
    signal.signal(signal.SIGTERM, _terminated)
    try:
        report, status = run(args)
    except KeyboardInterrupt:
        print("interrupted; every server was stopped", file=sys.stderr)
        return 130
    if status == 2:
        print(f"cannot start a server: {report['problems'][0]}", file=sys.stderr)
        return status
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return status


def main(argv: Sequence[str] | None = None) -> int:
    return run_and_report(_arguments(argv), run, format_report)


if __name__ == "__main__":
    sys.exit(main())
