"""The ``vitalsstream`` command: transform, ingest, db upgrade."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from adapters.sql_store import SqlStore
from engine.channel import Channel, Route
from engine.migrations import upgrade
from engine.settings import Settings
from transforms.errors import MessageProblems
from transforms.hl7.charset import decode
from transforms.hl7.header import read_header
from transforms.hl7.parser import parse
from transforms.oru import OruMapping, transform


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vitalsstream", description="VitalsStream integration engine")
    commands = parser.add_subparsers(dest="command", required=True)
    transform_ = commands.add_parser("transform", help="print the readings each HL7 file maps to (JSON lines)")
    transform_.add_argument("files", nargs="+", type=Path)
    transform_.add_argument("--tz", default="UTC", help="time zone of time stamps without offset (default UTC)")
    ingest = commands.add_parser("ingest", help="store HL7 files through the whole channel, print the ACKs")
    ingest.add_argument("files", nargs="+", type=Path)
    ingest.add_argument("--tz", default="UTC", help="time zone of time stamps without offset (default UTC)")
    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply the sql/ scripts not yet applied to VITALS_DB_URL")
    args = parser.parse_args(argv)
    try:
        zone = ZoneInfo(args.tz) if "tz" in args else None
    except (ZoneInfoNotFoundError, ValueError):
        parser.error(f"unknown time zone {args.tz!r}")
    if args.command == "transform":
        return _transform(args.files, OruMapping(zone=zone))
    settings = Settings.from_env()
    if args.command == "db":
        return _upgrade(settings)
    return _ingest(args.files, Route(oru=OruMapping(zone=zone)), settings)


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


if __name__ == "__main__":
    raise SystemExit(main())
