"""HTTP inbound paths of the running engine (REST submit, SOAP SubmitVitals) against a bare Spyne service.

One run starts two servers and drives three contenders with the same kind of load, one client count at a time:

* engine-rest: ``POST /api/v1/devices/{id}/readings`` (JSON, six vitals) on ``vitalsstream run`` with a fresh
  SQLite file (WAL, synchronous=FULL) and routes/;
* engine-soap: SOAP 1.1 ``SubmitVitals`` (six Readings) on ``/soap/vitals`` of the same engine;
* spyne-peer: bench/peers/bare_spyne.py, a Spyne service with the engine's SubmitVitals signature that parses
  the request and answers a fixed SubmitResult, storing nothing, on the same stack (a2wsgi + uvicorn).

The load: N clients (one asyncio task and one keep-alive connection each, in this process); each sends a
request and waits for its answer before sending the next. Requests are raw HTTP/1.1 built from templates made
once (no zeep on the load path; zeep checks one request per SOAP contender before the load, against
wsdl/vitals.wsdl). Every request has its own idempotency key, and every level its own patients, so nothing is
deduplicated. A level is a warm-up, then a fixed time; latency runs from the first byte sent to the last byte
of the answer. Errors: a REST answer that is not 201 with this request's six readings, a SOAP fault or an answer
without the request's readings (engine) or without a SubmitVitalsResponse (peer), a timeout, a lost connection.
After each engine level, every accepted request must have its six rows in device_readings.

Usage: .venv/bin/python bench/http_bench.py [--clients 1,8] [--seconds S] [--warmup S] [--only rest,soap,peer]
       [--json]
Exit status: 0 all good, 1 an error (a wrong answer, a fault, a timeout, a stored-row mismatch, a failed zeep
check), 2 a server could not be started, 130 interrupted. Every server it starts is stopped before it exits.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import random
import re
import shutil
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

from mllp_bench import (
    HOST,
    ROOT,
    SATURATED,
    VITALSSTREAM,
    SetupError,
    _healthy,
    _number,
    _percentile,
    _positive_ints,
    _Snapshot,
    _start,
    code_version,
    free_port,
    ratio_rows,
    run_and_report,
)
from sqlalchemy import create_engine, func, select

from adapters.sql_tables import device_readings, messages

PEER_SCRIPT = Path(__file__).resolve().parent / "peers" / "bare_spyne.py"
WSDL = ROOT / "wsdl" / "vitals.wsdl"
NS = "urn:vitalsstream:vitals:1"
SOAP_PATH = "/soap/vitals"

DEFAULT_CLIENTS = (1, 8)
DEFAULT_SECONDS = 6.0
DEFAULT_WARMUP = 1.0
ANSWER_TIMEOUT = 30.0  # a request without its answer after this is an error, and its client stops
SHOWN_ERRORS = 5

CONTENDERS = {  # --only name: (display name, one-letter code used in keys and patient ids)
    "rest": ("engine-rest", "R"),
    "soap": ("engine-soap", "S"),
    "peer": ("spyne-peer", "P"),
}
PEER = "spyne-peer"


# ----------------------------------------------------------------------------------------------------------
# The requests
# ----------------------------------------------------------------------------------------------------------

BEDS = 24  # patients per level, each on its own device; requests go to the beds in turn
READINGS = 6  # vitals per request (REST and SOAP alike)
REPORT_INTERVAL = timedelta(seconds=60)  # a bed's observation clock advances this much per request
BREACH_SHARE = 0.03  # share of requests with one vital outside its default alert band
FIRST_OBSERVATION = datetime(2025, 3, 14, 6, 0, tzinfo=UTC)

# (REST field, SOAP vital, UCUM unit) in request order; values come in the same order.
_VITALS = (("heart_rate", "heart_rate", "/min"), ("spo2", "spo2", "%"), ("temperature_c", "temperature", "Cel"),
           ("resp_rate", "resp_rate", "/min"), ("bp_systolic", "bp_systolic", "mm[Hg]"),
           ("bp_diastolic", "bp_diastolic", "mm[Hg]"))
_BREACHES = ((0, "128"), (0, "146"), (1, "92"), (1, "87"), (3, "27"), (2, "38.6"), (4, "171"), (5, "46"))

_REST_BODY = ('{{"patient_id": "{patient}", "timestamp": "{observed}", '
              + ", ".join(f'"{rest}": {{v{n}}}' for n, (rest, _, _) in enumerate(_VITALS)) + "}}")
_REST_HEAD = ("POST /api/v1/devices/{device}/readings HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json"
              "\r\nIdempotency-Key: {key}\r\nContent-Length: {length}\r\n\r\n")
_SOAP_READING = ("<v:Reading><v:PatientId>{{patient}}</v:PatientId><v:DeviceId>{{device}}</v:DeviceId>"
                 "<v:Vital>{vital}</v:Vital><v:Value>{{v{n}}}</v:Value><v:Unit>{unit}</v:Unit>"
                 "<v:ObservedAt>{{observed}}</v:ObservedAt></v:Reading>")
_SOAP_BODY = ('<?xml version="1.0" encoding="UTF-8"?>\n'
              f'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:v="{NS}"><s:Body>'
              "<v:SubmitVitals>"
              + "".join(_SOAP_READING.format(vital=vital, unit=unit, n=n) for n, (_, vital, unit) in enumerate(_VITALS))
              + "<v:Caller>http-bench</v:Caller><v:IdempotencyKey>{key}</v:IdempotencyKey>"
              "</v:SubmitVitals></s:Body></s:Envelope>")
_SOAP_HEAD = ("POST " + SOAP_PATH + " HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/xml; charset=utf-8\r\n"
              'SOAPAction: "SubmitVitals"\r\nContent-Length: {length}\r\n\r\n')


@dataclass
class _Bed:
    number: int
    heart_rate: int  # this patient's baseline
    systolic: int
    clock: datetime


@dataclass
class Request:
    key: str  # Idempotency-Key (REST) or IdempotencyKey (SOAP); the message's control_id once stored
    patient: str
    data: bytes  # the whole HTTP request


class Feed:
    """Requests of one kind (``rest`` or ``soap``) for one server: unique key, beds in turn, clocks move on.

    ``prefix`` (one per level) starts every key, patient and device id, so a level's rows can be counted.
    Values wander around each patient's baseline inside the default alert bands, except BREACH_SHARE of the
    requests, which carry one vital outside its band (alerts are raised and updated too)."""

    def __init__(self, kind: str, port: int, seed: int = 0, beds: int = BEDS):
        self.kind = kind
        self.host = f"{HOST}:{port}"
        self._random = random.Random(seed)
        self._beds = [_Bed(n, self._random.randint(62, 92), self._random.randint(108, 138),
                           FIRST_OBSERVATION + timedelta(seconds=7 * n)) for n in range(1, beds + 1)]
        self.sent = 0

    def values(self, bed: _Bed) -> list[str]:
        r = self._random
        values = [str(bed.heart_rate + r.randint(-5, 5)), str(r.randint(95, 99)), f"{r.uniform(36.4, 37.6):.1f}",
                  str(r.randint(12, 20)), str(bed.systolic + r.randint(-6, 6)), str(r.randint(62, 84))]
        if r.random() < BREACH_SHARE:
            index, value = r.choice(_BREACHES)
            values[index] = value
        return values

    def next(self, prefix: str) -> Request:
        self.sent += 1
        bed = self._beds[self.sent % len(self._beds)]
        bed.clock += REPORT_INTERVAL
        key, patient, device = f"{prefix}{self.sent:07d}", f"{prefix}P{bed.number:02d}", f"{prefix}D{bed.number:02d}"
        fields = {"key": key, "patient": patient, "device": device,
                  "observed": bed.clock.strftime("%Y-%m-%dT%H:%M:%SZ"),
                  **{f"v{n}": v for n, v in enumerate(self.values(bed))}}
        if self.kind == "rest":
            body = _REST_BODY.format(**fields).encode()
            head = _REST_HEAD.format(host=self.host, length=len(body), **fields)
        else:
            body = _SOAP_BODY.format(**fields).encode()
            head = _SOAP_HEAD.format(host=self.host, length=len(body))
        return Request(key, patient, head.encode("ascii") + body)


# ----------------------------------------------------------------------------------------------------------
# Checking answers
# ----------------------------------------------------------------------------------------------------------

def check_rest(request: Request, status: int, body: bytes) -> str | None:
    """None when the answer is right: 201 with this request's six stored readings; else what is wrong."""
    if status != 201:
        return f"HTTP {status}: {body[:300]!r}"
    try:
        answer = json.loads(body)
        readings = answer["readings"]
        ok = (isinstance(answer["message_id"], int) and len(readings) == READINGS
              and all(reading["patient_id"] == request.patient for reading in readings))
    except (ValueError, KeyError, TypeError):
        ok = False
    return None if ok else f"HTTP 201 but not this request's {READINGS} readings: {body[:300]!r}"


_READINGS_TAG = re.compile(rb"<(?:\w+:)?Readings>")
_ALERTS_TAG = re.compile(rb"<(?:\w+:)?Alerts>")


def check_engine_soap(request: Request, status: int, body: bytes) -> str | None:
    """HTTP 200, no fault, Duplicate false and the six stored readings of this request's patient."""
    if status != 200 or b"Fault>" in body:
        return f"HTTP {status}{' (fault)' if b'Fault>' in body else ''}: {body[:300]!r}"
    readings, alerts = len(_READINGS_TAG.findall(body)), len(_ALERTS_TAG.findall(body))
    if (b"Duplicate>false<" not in body or b"MessageId>" not in body or readings != READINGS
            or body.count(b">" + request.patient.encode() + b"<") != readings + alerts):  # each has a PatientId
        return f"not this request's {READINGS} readings: {body[:300]!r}"
    return None


def check_peer(request: Request, status: int, body: bytes) -> str | None:
    """HTTP 200, no fault, a SubmitVitalsResponse (the peer's answer is fixed)."""
    if status != 200 or b"Fault>" in body or b"SubmitVitalsResponse>" not in body:
        return f"HTTP {status}: {body[:300]!r}"
    return None


# ----------------------------------------------------------------------------------------------------------
# The load generator: raw HTTP/1.1 over asyncio streams, one keep-alive connection per client
# ----------------------------------------------------------------------------------------------------------

class Connection:
    """One client's connection; reopened when the server says ``Connection: close``."""

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def exchange(self, data: bytes) -> tuple[int, bytes, float, float]:
        """Send one request; (status, body, send time, time the last byte of the answer arrived)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        assert self.reader is not None
        started = time.perf_counter()
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {name.strip().lower(): value.strip()
                   for name, _, value in (line.partition(":") for line in lines[1:] if line)}
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = bytearray()
            while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                chunks += await self.reader.readexactly(size + 2)
                del chunks[-2:]
            await self.reader.readuntil(b"\r\n")  # the end of the (empty) trailer
            body = bytes(chunks)
        else:
            body = await self.reader.read()
            headers["connection"] = "close"
        arrived = time.perf_counter()
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, body, started, arrived

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
            self.reader = self.writer = None


@dataclass
class Level:
    """Everything one contender did at one client count."""

    contender: str
    clients: int
    prefix: str  # of every key, patient and device id sent at this level
    sent: int = 0
    accepted: list[str] = field(default_factory=list)  # keys answered right (warm-up included)
    unanswered: list[str] = field(default_factory=list)  # sent, no answer (timeout, connection lost)
    errors: list[str] = field(default_factory=list)
    timings: list[tuple[float, float]] = field(default_factory=list)  # (sent, answered) of right answers
    window: tuple[float, float] = (0.0, 0.0)
    cpu: dict[str, float | None] = field(default_factory=dict)
    store: dict[str, object] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        start, end = self.window
        measured = sorted(done - sent for sent, done in self.timings if start <= done <= end)
        elapsed = end - start
        return {
            "contender": self.contender,
            "clients": self.clients,
            "requests_per_second": round(len(measured) / elapsed, 1) if elapsed > 0 else 0.0,
            "p50_ms": _percentile(measured, 50),
            "p99_ms": _percentile(measured, 99),
            "errors": len(self.errors),
            "measured_requests": len(measured),
            "measured_seconds": round(elapsed, 3),
            "sent": self.sent,
            "accepted": len(self.accepted),
            **{f"{name}_cpu_percent": value for name, value in self.cpu.items() if name != "database"},
            "store": self.store or None,
            "error_examples": self.errors[:SHOWN_ERRORS],
        }


Check = Callable[[Request, int, bytes], "str | None"]


async def drive(port: int, feed: Feed, check: Check, level: Level, warmup: float, seconds: float,
                server_pid: int | None) -> None:
    """``level.clients`` clients for ``warmup`` + ``seconds``; CPU over the measured window."""
    loop = asyncio.get_running_loop()
    finished = loop.create_future()
    marks: dict[str, _Snapshot] = {}

    def start_measuring() -> None:
        marks["start"] = _Snapshot.take(server_pid, False)

    def stop_measuring() -> None:
        if not finished.done():
            marks["end"] = _Snapshot.take(server_pid, False)
            finished.set_result(None)

    timers = [loop.call_later(warmup, start_measuring), loop.call_later(warmup + seconds, stop_measuring)]

    async def client(number: int) -> None:
        connection = Connection(port)
        try:
            while not finished.done():
                request = feed.next(level.prefix)
                level.sent += 1
                try:
                    async with asyncio.timeout(ANSWER_TIMEOUT):
                        status, body, sent, arrived = await connection.exchange(request.data)
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError, IndexError) as error:
                    level.unanswered.append(request.key)
                    reason = (f"no answer within {ANSWER_TIMEOUT:g} s" if isinstance(error, TimeoutError)
                              else f"{type(error).__name__}: {error}")
                    level.errors.append(f"{request.key}: {reason}; client {number} stopped")
                    return
                problem = check(request, status, body)
                if problem is not None:
                    level.errors.append(f"{request.key}: {problem}")
                    continue
                level.accepted.append(request.key)
                level.timings.append((sent, arrived))
        finally:
            await connection.close()

    try:
        await asyncio.gather(*(client(n) for n in range(1, level.clients + 1)))
    finally:
        for timer in timers:
            timer.cancel()
    stop_measuring()  # every client gave up early: the window ends now
    start, end = marks.get("start"), marks["end"]
    if start is None:
        level.window, level.cpu = (end.at, end.at), {}
        return
    level.window = (start.at, end.at)
    level.cpu = start.usage(end)


# ----------------------------------------------------------------------------------------------------------
# The servers, and the zeep check before the load
# ----------------------------------------------------------------------------------------------------------

@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen
    description: str
    db_url: str | None = None


def _wsdl_ready(port: int) -> Callable[[], bool]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy

    def check() -> bool:
        try:
            with opener.open(f"http://{HOST}:{port}{SOAP_PATH}?wsdl", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False
    return check


def start_engine(stack: contextlib.ExitStack, workdir: Path) -> Server:
    db = workdir / "bench.db"
    port = free_port()
    env = {**os.environ, "VITALS_DB_URL": f"sqlite:///{db}", "VITALS_MLLP_HOST": HOST,
           "VITALS_MLLP_PORT": str(free_port()), "VITALS_HTTP_HOST": HOST, "VITALS_HTTP_PORT": str(port),
           "VITALS_ROUTES": str(ROOT / "routes")}
    env.pop("VITALS_API_KEYS", None)  # writes without a key (the benchmark measures the path, not auth)
    process = _start(stack, [str(VITALSSTREAM), "run"], env, workdir / "engine.log", _healthy(port), "engine")
    return Server("engine", port, process, f"vitalsstream run, sqlite:///{db} (WAL, synchronous=FULL), routes/",
                  f"sqlite:///{db}")


def start_peer(stack: contextlib.ExitStack, workdir: Path) -> Server:
    port = free_port()
    process = _start(stack, [sys.executable, str(PEER_SCRIPT), "--host", HOST, "--port", str(port)],
                     dict(os.environ), workdir / "spyne-peer.log", _wsdl_ready(port), PEER)
    versions = ", ".join(f"{name} {importlib.metadata.version(name)}" for name in ("spyne", "a2wsgi", "uvicorn"))
    return Server(PEER, port, process, f"bench/peers/bare_spyne.py ({versions}): parses, answers a fixed "
                  "SubmitResult, stores nothing", None)


def zeep_checks(servers: dict[str, Server], run_id: str) -> list[str]:
    """Before the load: problems found by zeep (none: all good).

    * the raw SOAP template, filled once, deserialises with wsdl/vitals.wsdl's SubmitVitals input message;
    * zeep (from the published WSDL) calls SubmitVitals once on every SOAP server and reads the answer;
    * the peer's own WSDL gives SubmitVitals the same input and output signature and the same types."""
    import requests
    import zeep
    from lxml import etree
    from zeep.transports import Transport

    session = requests.Session()
    session.trust_env = False  # loopback only: no proxy
    transport = Transport(session=session, timeout=10, operation_timeout=ANSWER_TIMEOUT)
    settings = zeep.Settings(forbid_dtd=True)
    client = zeep.Client(str(WSDL), settings=settings, transport=transport)
    operation = client.service._binding._operations["SubmitVitals"]
    problems = []

    request = Feed("soap", 0, seed=99).next(f"{run_id}-T-")
    envelope = etree.fromstring(request.data.split(b"\r\n\r\n", 1)[1])
    parsed = operation.input.deserialize(envelope)
    if (len(parsed.Reading or []) != READINGS or parsed.IdempotencyKey != request.key
            or any(reading.PatientId != request.patient for reading in parsed.Reading)):
        problems.append(f"zeep reads the raw SOAP template differently: {parsed}")

    readings = [{"PatientId": f"{run_id}-Z-P01", "DeviceId": f"{run_id}-Z-D01", "Vital": vital, "Value": value,
                 "Unit": unit, "ObservedAt": "2025-03-14T06:00:00Z"}
                for (_, vital, unit), value in zip(_VITALS, ("72", "97", "37.0", "16", "120", "80"), strict=True)]
    for name, server in servers.items():
        service = client.create_service(f"{{{NS}}}VitalsService", f"http://{HOST}:{server.port}{SOAP_PATH}")
        try:
            answer = service.SubmitVitals(Reading=readings, Caller="zeep-check",
                                          IdempotencyKey=f"{run_id}-Z-{CONTENDERS[name][1]}")
        except Exception as error:  # zeep.exceptions.Fault, TransportError, requests errors, ...
            problems.append(f"zeep SubmitVitals on {name}: {type(error).__name__}: {error}")
            continue
        stored = answer.Readings or []
        if answer.MessageId is None or answer.Duplicate or len(stored) != READINGS:
            problems.append(f"zeep SubmitVitals on {name}: unexpected answer {answer}")
        elif name == "soap" and any(reading.PatientId != f"{run_id}-Z-P01" for reading in stored):
            problems.append(f"zeep SubmitVitals on {name}: readings of another patient: {answer}")

    if "peer" in servers:
        ours = zeep.Client(f"http://{HOST}:{servers['peer'].port}{SOAP_PATH}?wsdl", settings=settings,
                           transport=transport)
        theirs = ours.service._binding._operations["SubmitVitals"]
        shapes = [("input", operation.input.signature(), theirs.input.signature()),
                  ("output", operation.output.signature(), theirs.output.signature())]
        shapes += [(kind, client.get_type(f"{{{NS}}}{kind}").signature(), ours.get_type(f"{{{NS}}}{kind}").signature())
                   for kind in ("Reading", "SubmitResult", "StoredReading", "Alert")]
        problems += [f"the peer's SubmitVitals {what} differs from wsdl/vitals.wsdl: {theirs_!r} != {published!r}"
                     for what, published, theirs_ in shapes if published != theirs_]
    return problems


# ----------------------------------------------------------------------------------------------------------
# The database check
# ----------------------------------------------------------------------------------------------------------

def check_store(db_url: str, level: Level) -> dict[str, object]:
    """Rows in device_readings of this level's patients, by the control_id (idempotency key) of their message:
    every accepted request must have its six, and no other request any."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(messages.c.control_id, func.count(device_readings.c.id))
                                .select_from(device_readings.join(messages,
                                                                  device_readings.c.message_id == messages.c.id))
                                .where(device_readings.c.patient_id.like(level.prefix + "%"))
                                .group_by(messages.c.control_id)).all()
    finally:
        engine.dispose()
    counts = {key: count for key, count in rows}
    short = [key for key in level.accepted if counts.get(key, 0) != READINGS]
    extra = sorted(set(counts) - set(level.accepted) - set(level.unanswered))
    for key in short[:SHOWN_ERRORS]:
        level.errors.insert(0, f"{key}: accepted, but {counts.get(key, 0)} of its {READINGS} readings stored")
    level.errors += [f"{key}: {counts[key]} readings stored but never sent or not accepted" for key in extra]
    return {"rows": sum(counts.values()), "expected": READINGS * len(level.accepted), "accepted": len(level.accepted),
            "short": len(short), "unexpected": len(extra), "ok": not short and not extra}


# ----------------------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------------------

def ratios(results: list[dict]) -> list[dict]:
    """Per client count: engine-soap / spyne-peer (like for like) and engine-rest / spyne-peer (REST vs SOAP)."""
    return ratio_rows(results, "clients", "requests_per_second", ("engine-soap", "engine-rest"), PEER)


def format_report(report: dict) -> str:
    settings = report["settings"]
    lines = [f"HTTP load: {READINGS} vitals per request (REST JSON ~{settings['rest_bytes']:,} bytes, SOAP 1.1 "
             f"envelope ~{settings['soap_bytes']:,} bytes), unique idempotency keys, {BEDS} new patients per level; "
             f"each client waits for its answer; per level {settings['warmup']:g} s warm-up + "
             f"{settings['seconds']:g} s",
             f"latency: first byte sent to last byte of the answer; client: {settings['client']}",
             f"engine code: {settings['code']}",
             f"zeep check (wsdl/vitals.wsdl): {settings['zeep_check']}"]
    for name, description in report["contenders"].items():
        lines.append(f"  {name:<12} {description}")
    lines.append("")
    lines.append(f"{'contender':<12} {'clients':>7} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} "
                 f"{'client cpu':>10} {'server cpu':>10} {'machine':>8}  database check")
    for r in report["results"]:
        store = r["store"]
        check = ("-" if store is None else
                 f"{'ok' if store['ok'] else 'MISMATCH'}: {store['rows']} of {store['expected']} readings "
                 f"({store['accepted']} accepted x {READINGS}), {store['short']} short")
        lines.append(f"{r['contender']:<12} {r['clients']:>7} {_number(r['requests_per_second'], ',.0f', 11)} "
                     f"{_number(r['p50_ms'], '.2f', 8)} {_number(r['p99_ms'], '.2f', 8)} {r['errors']:>6} "
                     f"{_number(r.get('client_cpu_percent'), '.0f', 10, '%')} "
                     f"{_number(r.get('server_cpu_percent'), '.0f', 10, '%')} "
                     f"{_number(r.get('machine_cpu_percent'), '.0f', 8, '%')}  {check}")
    if report["ratios"]:
        lines.append("")
        lines.append(f"{'ratio to ' + PEER:<20} {'clients':>7} {'engine-soap req/s':>18} {'p50':>7}   "
                     f"{'engine-rest req/s (REST vs SOAP peer)':>38} {'p50':>7}")
        for row in report["ratios"]:
            lines.append(f"{'':<20} {row['clients']:>7} "
                         f"{_number(row.get(f'engine-soap / {PEER}'), '.2f', 18, ' x')} "
                         f"{_number(row.get(f'engine-soap / {PEER} p50'), '.2f', 7, ' x')}   "
                         f"{_number(row.get(f'engine-rest / {PEER}'), '.2f', 38, ' x')} "
                         f"{_number(row.get(f'engine-rest / {PEER} p50'), '.2f', 7, ' x')}")
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
    return [key for key in CONTENDERS if key in keys]


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=_positive_ints, default=list(DEFAULT_CLIENTS),
                        help="client counts to run, comma-separated (default 1,8)")
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS,
                        help=f"measured seconds per contender and client count (default {DEFAULT_SECONDS:g})")
    parser.add_argument("--warmup", type=float, default=DEFAULT_WARMUP,
                        help=f"seconds of unmeasured load before each level (default {DEFAULT_WARMUP:g})")
    parser.add_argument("--only", type=_contender_keys, default=list(CONTENDERS),
                        help="contenders, comma-separated: rest,soap,peer (default all)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.warmup < 0:
        parser.error("--seconds must be positive, --warmup not negative")
    return args


CHECKS: dict[str, Check] = {"rest": check_rest, "soap": check_engine_soap, "peer": check_peer}


def run(args: argparse.Namespace) -> tuple[dict, int]:
    """Start the servers, check with zeep, drive every level, check the database, stop everything."""
    run_id = uuid.uuid4().hex[:6]
    version = code_version()
    problems: list[str] = []
    levels: list[Level] = []
    with contextlib.ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="vitals-http-bench-"))
        stack.callback(shutil.rmtree, workdir, True)
        servers: dict[str, Server] = {}
        try:
            if {"rest", "soap"} & set(args.only):
                engine = start_engine(stack, workdir)
                servers.update({key: engine for key in ("rest", "soap") if key in args.only})
            if "peer" in args.only:
                servers["peer"] = start_peer(stack, workdir)
        except (SetupError, OSError, subprocess.SubprocessError) as error:
            return {"problems": [str(error) if isinstance(error, SetupError)
                                 else f"{type(error).__name__}: {error}"]}, 2
        soap_servers = {key: server for key, server in servers.items() if key != "rest"}
        zeep_problems = zeep_checks(soap_servers, run_id) if soap_servers else []
        problems += zeep_problems
        kinds = {key: "rest" if key == "rest" else "soap" for key in servers}
        feeds = {key: Feed(kinds[key], servers[key].port, seed=n) for n, key in enumerate(servers)}
        order = list(servers)
        for index, clients in enumerate(args.clients):
            shift = index % len(order)
            for key in order[shift:] + order[:shift]:
                name, code = CONTENDERS[key]
                server = servers[key]
                level = Level(name, clients, f"{run_id}-{code}{clients}-")
                asyncio.run(drive(server.port, feeds[key], CHECKS[key], level, args.warmup, args.seconds,
                                  server.process.pid))
                if server.db_url is not None:
                    level.store = check_store(server.db_url, level)
                    if not level.store["ok"]:
                        problems.append(f"{name} at {clients} clients: {level.store['short']} accepted requests "
                                        f"without their {READINGS} readings, {level.store['unexpected']} unexpected")
                if server.process.poll() is not None:
                    problems.append(f"{server.name} exited (status {server.process.returncode}) during the run")
                levels.append(level)
                if not args.json:
                    print(f"... {name}, {clients} client(s): {level.summary()['requests_per_second']:,.0f} requests/s",
                          file=sys.stderr, flush=True)
        sizes = {kind: len(Feed(kind, 0).next(f"{run_id}-X-").data.split(b"\r\n\r\n", 1)[1])
                 for kind in ("rest", "soap")}
        contenders = {CONTENDERS[key][0]: (f"POST /api/v1/devices/{{id}}/readings on {server.description}"
                                           if key == "rest" else
                                           f"SOAP 1.1 SubmitVitals on {SOAP_PATH} of {server.description}"
                                           if key == "soap" else server.description)
                      for key, server in servers.items()}
    results = [level.summary() for level in levels]
    for level in levels:
        for error in level.errors[:SHOWN_ERRORS]:
            print(f"ERROR {level.contender} at {level.clients} clients: {error}", file=sys.stderr)
    notes = []
    busy = [r for r in results if (r.get("client_cpu_percent") or 0) >= SATURATED]
    if busy:
        notes.append("the client used >= {:.0f}% of a core at {}: the load generator may limit those rates".format(
            SATURATED, ", ".join(f"{r['contender']}/{r['clients']}" for r in busy)))
    notes.append(f"client and servers share this machine's {os.cpu_count()} cores; engine-rest and engine-soap "
                 "are one engine process; compare ratios from one run, not rates across runs")
    report = {
        "settings": {"clients": args.clients, "seconds": args.seconds, "warmup": args.warmup,
                     "readings_per_request": READINGS, "beds": BEDS, "rest_bytes": sizes["rest"],
                     "soap_bytes": sizes["soap"], "answer_timeout": ANSWER_TIMEOUT, "run_id": run_id,
                     "cores": os.cpu_count(), "code": version,
                     "client": "one asyncio process, raw HTTP/1.1, one keep-alive connection per client",
                     "zeep_check": ("skipped (no SOAP contender)" if "soap" not in args.only and "peer" not in args.only
                                    else "FAILED" if zeep_problems else "ok")},
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
