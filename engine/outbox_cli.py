"""``vitalsstream outbox list|retry|pause|resume``: the operator's outbox actions from a shell.

They work on the database directly (VITALS_DB_URL), so they also work while the engine is stopped; a
running engine sees a pause or a retry at its next look (within a second).
"""
from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from adapters.sql_store import SqlStore
from adapters.sql_tables import destinations, outbox
from engine import outbox_actions
from engine.migrations import upgrade
from engine.operator_actions import ActionRefused
from engine.routes import RouteConfigError, load_routes
from engine.settings import Settings

STATES = ("PENDING", "SENDING", "SENT", "DEAD", "SUPPRESSED")


def add_commands(commands: Any) -> None:
    """The ``outbox`` command and its subcommands, on the main parser's subparsers."""
    parser = commands.add_parser("outbox", help="see and act on the outbox (deliveries to the EHR and "
                                                "notifications)")
    actions = parser.add_subparsers(dest="outbox_command", required=True)
    listing = actions.add_parser("list", help="outbox rows, newest first")
    listing.add_argument("--state", choices=STATES)
    listing.add_argument("--destination")
    listing.add_argument("--limit", type=int, default=50)
    retry = actions.add_parser("retry", help="send dead letters again: one row by id, or every one of a "
                                             "destination")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?", type=int, help="outbox row id")
    which.add_argument("--destination", help="every dead letter of this destination")
    for name, text in (("pause", "stop sending to a destination (its rows wait)"),
                       ("resume", "start sending to a paused destination again")):
        command = actions.add_parser(name, help=text)
        command.add_argument("destination")
        command.add_argument("--by", default=getpass.getuser(), help="who (default: your user name)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    store = SqlStore.from_url(settings.db_url)
    try:
        if store.dialect == "sqlite":
            upgrade(store.engine)  # the embedded database follows the code; a server's DBA upgrades it
        if args.outbox_command == "list":
            return _list(store, args.state, args.destination, args.limit)
        name = getattr(args, "destination", None)
        if name and not _known(store, settings, name):
            raise ActionRefused(f"there is no destination {name!r} (not in the routes of {settings.routes_dir}, "
                                "nor in the outbox)")
        if args.outbox_command == "retry":
            if args.destination:
                print(f"{outbox_actions.retry_dead(store, args.destination)} dead letters of "
                      f"{args.destination} queued again")
            else:
                row = outbox_actions.retry(store, args.id)
                print(f"outbox row {row.id} ({row.destination}) queued again")
            return 0
        action = outbox_actions.pause if args.outbox_command == "pause" else outbox_actions.resume
        action(store, args.destination, args.by)
        print(f"{args.destination} {'paused' if args.outbox_command == 'pause' else 'resumed'}")
        return 0
    except ActionRefused as refused:
        print(f"error: {refused}", file=sys.stderr)
        return 1
    except SQLAlchemyError as error:
        print(f"error: the database at {store.engine.url.render_as_string()} failed: {type(error).__name__}: "
              f"{getattr(error, 'orig', error)}", file=sys.stderr)
        return 1
    finally:
        store.close()


def _known(store: SqlStore, settings: Settings, name: str) -> bool:
    """A destination of a route file (enabled or not), or one the outbox or the pause switches have seen."""
    try:
        configured = {getattr(d, "name", None) for route in load_routes(settings.routes_dir)
                      for d in route.destinations}
    except RouteConfigError:
        configured = set()
    if name in configured:
        return True
    with store.engine.connect() as conn:
        return any(conn.execute(select(table.c[column]).where(table.c[column] == name).limit(1)).first()
                   for table, column in ((outbox, "destination"), (destinations, "name")))


def _list(store: SqlStore, state: str | None, destination: str | None, limit: int) -> int:
    query = select(outbox.c.id, outbox.c.destination, outbox.c.kind, outbox.c.state, outbox.c.attempts,
                   outbox.c.next_attempt_at, outbox.c.created_at, outbox.c.last_error)
    if state:
        query = query.where(outbox.c.state == state)
    if destination:
        query = query.where(outbox.c.destination == destination)
    with store.engine.connect() as conn:
        rows = list(conn.execute(query.order_by(outbox.c.id.desc()).limit(limit)))
    print(f"{'id':>8}  {'destination':<16} {'kind':<14} {'state':<10} {'tries':>5}  {'created (UTC)':<19}  "
          "next try / last error")
    for row in rows:
        later = f"{row.next_attempt_at:%Y-%m-%d %H:%M:%S}" if row.state == "PENDING" else ""
        error = (row.last_error or "")[:60]
        print(f"{row.id:>8}  {row.destination:<16} {row.kind:<14} {row.state:<10} {row.attempts:>5}  "
              f"{row.created_at:%Y-%m-%d %H:%M:%S}  {' / '.join(part for part in (later, error) if part)}")
    return 0
