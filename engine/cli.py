"""The ``vitalsstream`` command: run, send, transform, ingest, routes check|test, db upgrade, outbox, housekeeping,
mock-ehr."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from adapters.sql_store import SqlStore
from engine import outbox_cli
from engine.channel import Channel, Route
from engine.migrations import MigrationError, upgrade
from engine.scheduler import JOB_NAMES
from engine.settings import Settings
from transforms.errors import MessageProblems
from transforms.hl7.charset import decode
from transforms.hl7.header import read_header
from transforms.hl7.parser import parse
from transforms.oru import OruMapping, transform

if TYPE_CHECKING:
    from adapters.mllp.client import MllpClient


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vitalsstream", description="VitalsStream integration engine")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the engine: MLLP listeners of every route, HTTP (settings from VITALS_*)")
    send = commands.add_parser("send", help="send HL7 files over MLLP, one at a time, waiting for each ACK")
    send.add_argument("files", nargs="+", help="HL7 files; - reads one message from standard input")
    send.add_argument("--host", default="127.0.0.1")
    send.add_argument("--port", type=int, default=2575)
    send.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each ACK (default 30)")
    send.add_argument("--tls", action="store_true", help="connect with TLS")
    send.add_argument("--ca", help="CA file that signed the server certificate (TLS)")
    send.add_argument("--cert", help="client certificate (mutual TLS)")
    send.add_argument("--key", help="client private key (mutual TLS)")
    send.add_argument("--insecure", action="store_true", help="TLS without verifying the server (testing only)")
    for name, text in (("transform", "print the readings each HL7 file maps to (JSON lines)"),
                       ("ingest", "store HL7 files through the whole channel, print the ACKs")):
        command = commands.add_parser(name, help=text)
        command.add_argument("files", nargs="+", type=Path)
        command.add_argument("--tz", default="UTC", help="time zone of time stamps without offset (default UTC)")
    routes = commands.add_parser("routes", help="check or test route files")
    route_commands = routes.add_subparsers(dest="routes_command", required=True)
    for name, text in (("check", "validate every route and route test file; all errors at once"),
                       ("test", "run the route tests (NAME.test.yaml) beside the routes")):
        command = route_commands.add_parser(name, help=text)
        command.add_argument("directory", nargs="?", type=Path, help="default: VITALS_ROUTES or routes/")
    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply the sql/ scripts not yet applied to VITALS_DB_URL")
    outbox_cli.add_commands(commands)
    chores = commands.add_parser("housekeeping", help="run a housekeeping job now (it takes the job's lease: "
                                                      "refused while a running engine holds it)")
    chore_commands = chores.add_subparsers(dest="housekeeping_command", required=True)
    chore = chore_commands.add_parser("run", help="run one job once and print what it did")
    chore.add_argument("job", choices=JOB_NAMES)
    mock = commands.add_parser("mock-ehr", help="run the mock EHR (SOAP at /ehr, GET /received, POST /control); "
                                                "VITALS_MOCK_EHR_PASSWORD with --username requires WS-Security")
    mock.add_argument("--host", default="127.0.0.1")
    mock.add_argument("--port", type=int, default=8090)
    mock.add_argument("--state", type=Path, default=Path("var/mock-ehr.jsonl"), help="what it received (JSON lines)")
    mock.add_argument("--username", help="require a WS-Security UsernameToken with this user")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)

    def settings() -> Settings:
        try:
            return Settings.from_env()
        except ValueError as error:  # a VITALS_* variable that is not what it must be
            parser.error(str(error))

    if args.command in ("transform", "ingest"):
        try:
            zone = ZoneInfo(args.tz)
        except (ZoneInfoNotFoundError, ValueError):
            parser.error(f"unknown time zone {args.tz!r}")
        if args.command == "transform":
            return _transform(args.files, OruMapping(zone=zone))
        return _ingest(args.files, Route(oru=OruMapping(zone=zone)), settings())
    if args.command == "send":
        return _send(args)
    if args.command == "routes":
        directory = args.directory or settings().routes_dir
        return _check_routes(directory) if args.routes_command == "check" else _test_routes(directory)
    if args.command == "run":
        return _run(settings())
    if args.command == "outbox":
        return outbox_cli.run(args, settings())
    if args.command == "mock-ehr":
        return _mock_ehr(args)
    if args.command == "housekeeping":
        return _housekeeping(args.job, settings())
    return _upgrade(settings())


def _housekeeping(job: str, settings: Settings) -> int:
    from engine.routes import load_routes
    from engine.run import housekeeping
    routes = load_routes(settings.routes_dir)
    store = SqlStore.from_url(settings.db_url)
    try:
        if store.dialect == "sqlite":
            upgrade(store.engine)
        run = housekeeping(store, routes, f"cli:{settings.node_name}").run_once(job)
    finally:
        store.close()
    if not run.ran:
        print(f"{job}: not run ({run.error or 'another node holds its lease'})", file=sys.stderr)
        return 1
    if run.error:
        print(f"{job}: failed ({run.error})", file=sys.stderr)
        return 1
    print(f"{job}: {run.result}")
    return 0


def _mock_ehr(args: argparse.Namespace) -> int:
    from adapters.mock_ehr.server import serve  # Spyne loads only for this command
    password = os.environ.get("VITALS_MOCK_EHR_PASSWORD")
    if args.username and not password:
        print("error: --username needs the password in VITALS_MOCK_EHR_PASSWORD", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: uvicorn has shut down cleanly already
        serve(args.host, args.port, args.state, args.username, password if args.username else None)
    return 0


def _transform(files: list[Path], mapping: OruMapping) -> int:
    status = 0
    for path in files:
        try:
            message = parse(decode(path.read_bytes()))
            for reading in transform(message, read_header(message), mapping):
                print(json.dumps(reading.as_json()))
        except MessageProblems as problems:
            status = 1
            for problem in problems.problems:
                print(f"{path}: {problem}", file=sys.stderr)
        except OSError as error:
            status = 1
            print(f"{path}: {error.strerror}", file=sys.stderr)
    return status


def _upgrade(settings: Settings) -> int:
    store = SqlStore.from_url(settings.db_url)
    try:
        applied = upgrade(store.engine)
    finally:
        store.close()
    print(f"applied {', '.join(map(str, applied))}" if applied else "database is up to date")
    return 0


def _ingest(files: list[Path], route: Route, settings: Settings) -> int:
    store = SqlStore.from_url(settings.db_url)
    status = 0
    try:
        if store.dialect == "sqlite":
            upgrade(store.engine)
        channel = Channel(store)
        for path in files:
            try:
                raw = path.read_bytes()
            except OSError as error:
                print(f"{path}: {error.strerror}", file=sys.stderr)
                status = 1
                continue
            receipt = channel.dispatch(raw, route, peer=f"file:{path}")
            print(f"# {path}: message {receipt.message_id}, {receipt.status}, {receipt.readings} readings, "
                  f"{receipt.alerts} alerts{', duplicate' if receipt.duplicate else ''}")
            for ack in receipt.acks:
                print(ack.replace("\r", "\n"), end="")
            if not receipt.acks:
                print(f"(no acknowledgement: {receipt.error or 'none requested by MSH-15/16'})")
            if not set(receipt.ack_codes) <= {"AA", "CA"} or receipt.status == "ERROR":
                status = 1
    finally:
        store.close()
    return status


def _check_routes(directory: Path) -> int:
    from engine.route_tests import check_route_tests
    from engine.routes import check_routes

    errors = check_routes(directory) + check_route_tests(directory)
    for error in errors:
        print(error, file=sys.stderr)
    print(f"{directory}: {len(errors)} error(s)" if errors else f"{directory}: routes and route tests are valid")
    return 1 if errors else 0


def _test_routes(directory: Path) -> int:
    from engine.route_tests import run_route_tests
    from engine.routes import RouteConfigError

    try:
        results = run_route_tests(directory)
    except RouteConfigError as error:
        print(error, file=sys.stderr)
        return 1
    for result in results:
        print(result)
    failed = sum(not r.passed for r in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


def _run(settings: Settings) -> int:
    from engine import logs
    from engine.routes import RouteConfigError
    from engine.run import build, serve

    logs.configure()
    try:
        engine = build(settings)
    except RouteConfigError as error:
        print(f"refusing to start, the routes have errors:\n{error}", file=sys.stderr)
        return 1
    except (MigrationError, ValueError) as error:
        print(f"refusing to start: {error}", file=sys.stderr)
        return 1
    try:
        asyncio.run(serve(engine))
    except OSError as error:  # a port that is taken, an address this machine does not have
        print(f"could not start: {error}", file=sys.stderr)
        return 1
    return 0


def _send(args: argparse.Namespace) -> int:
    from adapters.mllp.client import MllpClient, MllpError
    from adapters.mllp.server import client_ssl_context

    context = client_ssl_context(args.ca, args.cert, args.key, verify=not args.insecure) if args.tls else None
    failures = 0
    try:
        with MllpClient(args.host, args.port, timeout=args.timeout, ssl_context=context) as client:
            for name in args.files:
                payload = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
                failures += _send_one(client, name, payload)
    except (OSError, MllpError) as error:
        print(f"send failed: {error}", file=sys.stderr)
        return 2
    return 1 if failures else 0


def _send_one(client: MllpClient, name: str, payload: bytes) -> int:
    """Send one message, print its summary line; 1 when its answer is not AA/CA."""
    from adapters.mllp.client import acknowledgement_code

    try:
        control_id = read_header(parse(decode(payload))).control_id
    except MessageProblems:
        control_id = "(no MSH)"
    started = time.perf_counter()
    acks = client.exchange(payload.replace(b"\r\n", b"\r").replace(b"\n", b"\r"))
    latency = (time.perf_counter() - started) * 1000
    codes = [acknowledgement_code(ack).decode("ascii", "replace") for ack in acks]
    print(f"{name}: {control_id} {'/'.join(codes) or 'no ACK'} {latency:.1f} ms")
    return 0 if codes and set(codes) <= {"AA", "CA"} else 1


if __name__ == "__main__":
    raise SystemExit(main())
