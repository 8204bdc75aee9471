"""The composition root: build the store, the channel, the listeners and the HTTP server; run; stop cleanly.

Start: check every route (refuse to start half-configured), upgrade an embedded SQLite database, open the
store, start the group-commit writers, the outbox worker, the housekeeping scheduler, the MLLP listeners
(one per route) and HTTP.
Stop (Ctrl-C, SIGTERM): listeners stop accepting, messages in flight finish and are acknowledged, the
writers drain, deliveries in flight finish and are recorded, the scheduler stops and gives up its leases,
then the database connections close.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from sqlalchemy.exc import SQLAlchemyError

from adapters.dashboard.settings import DashboardSettings
from adapters.http_api import create_app
from adapters.mllp.server import MllpServer, Peer
from adapters.rest.settings import ApiSettings
from adapters.sql_store import SqlStore
from engine.channel import Channel, Inbound, Receipt, Route, Submission
from engine.group_commit import GroupCommitter
from engine.migrations import MigrationError, pending, upgrade
from engine.outbox import OutboxWorker
from engine.routes import RouteConfig, load_routes
from engine.routes.source import MllpSource
from engine.scheduler import Housekeeping, JobsConfig
from engine.senders import lanes_for
from engine.settings import Settings

log = logging.getLogger("vitalsstream.engine")

# Writers (threads of the store process) that commit in parallel. One, on every database: it takes every
# message waiting, so its batches grow with the load; two writers split the same messages into twice the
# transactions. SQLite has one write lock anyway. Measured on PostgreSQL after sql/postgresql/013, three
# alternating pairs: at 16 connections 1 writer 1,804-1,909 msgs/s, p99 12.8-14.0 ms, with 10% less of the
# machine, against 2 writers 1,554-1,604 msgs/s, p99 16.1-16.6 ms; at 4 connections 703-755 against
# 726-748 msgs/s. (Before 012, when PostgreSQL planned each batch's statements, 2 writers were ahead.)
WRITERS = 1
SUBMIT_TIMEOUT_SECONDS = 120  # a worker thread never waits forever for the committer


class _HttpServer(uvicorn.Server):
    """uvicorn without its own signal handling: the engine decides the order of shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Engine:
    settings: Settings
    routes: list[RouteConfig]
    store: SqlStore
    committer: GroupCommitter
    outbox: OutboxWorker
    housekeeping: Housekeeping
    api: ApiSettings
    dashboard: DashboardSettings
    listeners: list[MllpServer] = field(default_factory=list)
    http: _HttpServer | None = None

    def pcd01_route(self) -> Route | None:
        """PCD-01 over SOAP takes the HL7 path of the MLLP route named default, else of the first one."""
        mllp = [c for c in self.routes if isinstance(c.source, MllpSource)]
        chosen = next((c for c in mllp if c.name == "default"), mllp[0] if mllp else None)
        return chosen.to_route() if chosen else None

    def submission_route(self, kind: str) -> Route:
        """The route REST or SOAP submissions take: the route file with that source kind, else a default."""
        config = next((c for c in self.routes if c.source.kind == kind), None)
        return config.to_route() if config else Route(name=kind)

    def health(self) -> dict[str, Any]:
        channels = [{"route": s.name, "port": s.port, "listening": s.listening, "connections": s.connections}
                    for s in self.listeners]
        store = {"running": self.committer.store_process_id is not None, "restarts": self.committer.restarts}
        ok = all(c["listening"] for c in channels) and store["running"]
        return {"status": "ok" if ok else "degraded", "channels": channels, "store_process": store}


def build(settings: Settings) -> Engine:
    """Everything the engine needs, nothing started yet. Raises RouteConfigError on a bad route,
    ValueError on bad API settings, MigrationError on a server database that is behind."""
    api = ApiSettings.from_env()
    routes = load_routes(settings.routes_dir)
    dashboard = DashboardSettings.from_env(listen_host=settings.http_host, expected_intervals={
        c.name: c.devices.expected_interval_seconds for c in routes})
    store = SqlStore.from_url(settings.db_url)
    if store.dialect == "sqlite":
        upgrade(store.engine)
    else:
        _require_current_schema(store)
    outbox = OutboxWorker(store, lanes_for(routes), settings.node_name)
    committer = GroupCommitter(Channel(store, outbox_written=outbox.wake),
                               writers=WRITERS)
    engine = Engine(settings, routes, store, committer, outbox, housekeeping(store, routes, settings.node_name), api,
                    dashboard)
    for config in routes:
        if isinstance(config.source, MllpSource):
            engine.listeners.append(_listener(config, config.to_route(), committer))
    return engine


def housekeeping(store: SqlStore, routes: list[RouteConfig], node_name: str) -> Housekeeping:
    """The housekeeping jobs with what the routes say about devices, retention and destinations."""
    jobs = JobsConfig(devices={c.name: c.devices for c in routes}, retention={c.name: c.retention for c in routes},
                      destinations={c.name: [t.name for t in c.to_route().outbox if t.readings] for c in routes})
    return Housekeeping(store, jobs, node_name)


def _require_current_schema(store: SqlStore) -> None:
    """A server database is upgraded by its DBA (`vitalsstream db upgrade`), never behind their back."""
    try:
        missing = pending(store.engine)
    except SQLAlchemyError as error:  # unreachable now: start anyway, messages get AR 207 until it is back
        log.warning("database not reachable at start", extra={"error": type(error).__name__})
        return
    if missing:
        store.close()
        names = ", ".join(script.path.name for script in missing)
        raise MigrationError(f"the database schema is behind ({names} not applied): run `vitalsstream db upgrade`")


def _listener(config: RouteConfig, route: Route, committer: GroupCommitter) -> MllpServer:
    source = config.source

    async def handle(payload: bytes, peer: Peer) -> list[bytes]:
        receipt = await committer.submit(Inbound(payload, route, peer.address))
        return receipt.ack_bytes()

    return MllpServer(source.host, source.port, handle, source.mllp_limits(), source.ssl_context(),
                      name=route.name)


def _from_threads(committer: GroupCommitter, loop: asyncio.AbstractEventLoop
                  ) -> Callable[[Submission | Inbound], Receipt]:
    """The group committer for code running in worker threads (the SOAP endpoints)."""
    def submit(item: Submission | Inbound) -> Receipt:
        return asyncio.run_coroutine_threadsafe(committer.submit(item), loop).result(SUBMIT_TIMEOUT_SECONDS)
    return submit


async def serve(engine: Engine, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (or SIGINT/SIGTERM), then shut down in order."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread (tests)
            loop.add_signal_handler(signum, stop.set)
    await engine.committer.start()
    engine.outbox.start()
    engine.housekeeping.start()
    started: list[MllpServer] = []
    try:
        for listener in engine.listeners:
            await listener.start()
            started.append(listener)
            log.info("listening", extra={"route": listener.name, "port": listener.port, "protocol": "mllp"})
        app = create_app(engine.health, store=engine.store, api=engine.api, submit=engine.committer.submit,
                         routes={config.name: config.to_route() for config in engine.routes},
                         blocking_submit=_from_threads(engine.committer, loop),
                         pcd01_route=engine.pcd01_route(), rest_route=engine.submission_route("rest"),
                         soap_route=engine.submission_route("soap"),
                         destinations=[{"name": d.name, "kind": d.kind, "route": c.name}
                                       for c in engine.routes for d in c.outbox_destinations()],
                         dashboard=engine.dashboard)
        engine.http = _HttpServer(uvicorn.Config(app, host=engine.settings.http_host,
                                                    port=engine.settings.http_port, log_config=None,
                                                    lifespan="off"))
        http_task = asyncio.create_task(engine.http.serve())
        await stop.wait()
        log.info("stopping")
        engine.http.should_exit = True
        await http_task
    finally:
        await asyncio.gather(*(listener.stop() for listener in started))
        await engine.committer.stop()
        await loop.run_in_executor(None, engine.outbox.stop)
        await loop.run_in_executor(None, engine.housekeeping.shutdown)
        engine.store.close()
        log.info("stopped")
