"""Housekeeping: the scheduled jobs (engine/jobs/) on an APScheduler BackgroundScheduler, one node per job.

Every engine node runs the same schedule (outbox sweep every 15 s, stale devices every 30 s,
reconciliation every 10 min, retention hourly; configurable). Before each run the node takes or renews the
job's lease (engine/leases.py, TTL a few intervals): the node holding it runs the body, the others skip,
so two engines on one database do not double the work, and when the leader stops (leases released) or
dies (leases expire) another node takes over. Runs never overlap on a node (max_instances=1), missed runs
collapse into one (coalesce), and a failing run is logged (its error type, never its text: it may quote
patient data) and retried at the next interval; it never stops the scheduler.

Times come from ``clock`` (UTC), so tests drive leases and jobs with a ``ManualClock``; ``run_once`` runs
one job now, under its lease, for tests and the CLI.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import SQLAlchemyError

from adapters.sql_store import SqlStore, utc_naive
from engine.jobs.outbox_sweep import DEFAULT_DOWN_AFTER_MINUTES, sweep_outbox
from engine.jobs.reconciliation import DEFAULT_DELAYED_AFTER_MINUTES, DEFAULT_LOOKBACK_HOURS, reconcile
from engine.jobs.retention import prune_content
from engine.jobs.stale_devices import check_devices
from engine.leases import Lease
from engine.routes.housekeeping import DEFAULT_RAW_CONTENT_DAYS, DevicesConfig, RetentionConfig

log = logging.getLogger("vitalsstream.housekeeping")

DEFAULT_INTERVALS: Mapping[str, float] = {"outbox_sweep": 15, "stale_devices": 30, "reconciliation": 600,
                                          "retention": 3600}
JOB_NAMES = tuple(DEFAULT_INTERVALS)
LEASE_INTERVALS = 3  # a lease lasts this many intervals: a leader may miss two runs before another takes over
MIN_LEASE_SECONDS = 30.0
HISTORY = 200  # runs remembered per node (JobRun), newest last

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class ManualClock:
    """A clock tests set and move by hand: ``clock()`` -> the current (naive UTC) time."""

    def __init__(self, now: datetime):
        self._now = utc_naive(now)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, now: datetime) -> None:
        with self._lock:
            self._now = utc_naive(now)

    def advance(self, **delta: float) -> datetime:
        with self._lock:
            self._now += timedelta(**delta)
            return self._now


@dataclass(frozen=True)
class JobsConfig:
    """What the jobs need from the routes and how often they run.

    ``devices`` and ``retention``: the routes' ``devices:`` and ``retention:`` settings by route name;
    ``destinations``: route name -> the outbox destinations that take its readings (for reconciliation).
    """

    devices: Mapping[str, DevicesConfig] = field(default_factory=dict)
    retention: Mapping[str, RetentionConfig] = field(default_factory=dict)
    destinations: Mapping[str, Sequence[str]] = field(default_factory=dict)
    intervals: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_INTERVALS))
    lease_seconds: Mapping[str, float] = field(default_factory=dict)  # default: LEASE_INTERVALS intervals
    enabled: frozenset[str] = frozenset(JOB_NAMES)
    destination_down_after_minutes: float = DEFAULT_DOWN_AFTER_MINUTES
    reconciliation_lookback_hours: int = DEFAULT_LOOKBACK_HOURS
    delayed_after_minutes: float = DEFAULT_DELAYED_AFTER_MINUTES
    default_raw_content_days: int = DEFAULT_RAW_CONTENT_DAYS  # routes without retention settings

    def __post_init__(self) -> None:
        unknown = (set(self.intervals) | set(self.lease_seconds) | set(self.enabled)) - set(JOB_NAMES)
        if unknown:
            raise ValueError(f"unknown housekeeping job(s): {', '.join(sorted(unknown))} "
                             f"(jobs: {', '.join(JOB_NAMES)})")
        if any(seconds <= 0 for seconds in (*self.intervals.values(), *self.lease_seconds.values())):
            raise ValueError("housekeeping intervals and lease times must be positive")

    def interval(self, job: str) -> float:
        return self.intervals.get(job, DEFAULT_INTERVALS[job])

    def lease_ttl(self, job: str) -> float:
        return self.lease_seconds.get(job, max(MIN_LEASE_SECONDS, LEASE_INTERVALS * self.interval(job)))


@dataclass(frozen=True)
class JobRun:
    """One scheduled (or run_once) turn of a job on this node."""

    job: str
    node: str
    at: datetime  # the clock's time for the run
    ran: bool  # False: another node holds the lease (or taking it failed: see error)
    result: Any = None  # the job's result object
    error: str | None = None  # the exception's type name


class Housekeeping:
    """The housekeeping jobs of one engine node (``node_name``: unique among the nodes sharing the database)."""

    def __init__(self, store: SqlStore, config: JobsConfig, node_name: str, clock: Clock = utc_now):
        self.store = store
        self.config = config
        self.node_name = node_name
        self.clock = clock
        self.leases = {job: Lease(store, job, node_name, config.lease_ttl(job)) for job in JOB_NAMES}
        self._runs: deque[JobRun] = deque(maxlen=HISTORY)
        self._scheduler: BackgroundScheduler | None = None

    # --- the job bodies -------------------------------------------------------------------------------

    def body(self, job: str) -> Callable[[datetime], Any]:
        config = self.config
        bodies: dict[str, Callable[[datetime], Any]] = {
            "outbox_sweep": lambda now: sweep_outbox(self.store, now, config.destination_down_after_minutes),
            "stale_devices": lambda now: check_devices(self.store, config.devices, now),
            "reconciliation": lambda now: reconcile(self.store, config.destinations, now,
                                                    config.reconciliation_lookback_hours,
                                                    config.delayed_after_minutes),
            "retention": lambda now: prune_content(
                self.store, {route: r.raw_content_days for route, r in config.retention.items()}, now,
                config.default_raw_content_days),
        }
        return bodies[job]

    # --- running ------------------------------------------------------------------------------------------

    def run_once(self, job: str, now: datetime | None = None) -> JobRun:
        """Run ``job`` now if this node holds (or can take) its lease; never raises for a failing run."""
        if job not in JOB_NAMES:
            raise ValueError(f"unknown housekeeping job {job!r} (jobs: {', '.join(JOB_NAMES)})")
        moment = utc_naive(now) if now is not None else self.clock()
        run = self._run(job, moment)
        self._runs.append(run)
        return run

    def _run(self, job: str, moment: datetime) -> JobRun:
        try:
            if not self.leases[job].try_acquire(moment):
                return JobRun(job, self.node_name, moment, ran=False)
        except Exception as error:  # the database may be away: try again next interval
            log.warning("housekeeping lease not taken", extra={"job": job, "node": self.node_name,
                                                               "error": type(error).__name__})
            return JobRun(job, self.node_name, moment, ran=False, error=type(error).__name__)
        try:
            result = self.body(job)(moment)
        except Exception as error:  # logged without its text (PHI); the scheduler lives on
            log.error("housekeeping job failed", extra={"job": job, "node": self.node_name,
                                                        "error": type(error).__name__})
            return JobRun(job, self.node_name, moment, ran=True, error=type(error).__name__)
        level = logging.INFO if getattr(result, "noteworthy", True) else logging.DEBUG
        log.log(level, "housekeeping job ran", extra={"job": job, "node": self.node_name, **_loggable(result)})
        return JobRun(job, self.node_name, moment, ran=True, result=result)

    @property
    def runs(self) -> list[JobRun]:
        """The last runs on this node, oldest first."""
        return list(self._runs)

    def start(self) -> None:
        """Schedule every enabled job (first runs at once) on a background scheduler thread."""
        if self._scheduler is not None:
            raise RuntimeError("housekeeping is already started")
        executors = logging.getLogger("apscheduler.executors")
        if executors.level == logging.NOTSET:  # "Running job ..." at INFO for every run is noise
            executors.setLevel(logging.WARNING)
        scheduler = BackgroundScheduler(timezone=UTC)
        first = datetime.now(UTC)
        for job in JOB_NAMES:
            if job in self.config.enabled:
                interval = self.config.interval(job)
                scheduler.add_job(self.run_once, IntervalTrigger(seconds=interval, timezone=UTC), args=[job],
                                  id=job, name=job, max_instances=1, coalesce=True,
                                  misfire_grace_time=max(1, int(interval)), next_run_time=first)
        scheduler.start()
        self._scheduler = scheduler
        log.info("housekeeping started", extra={"node": self.node_name, "jobs": sorted(self.config.enabled)})

    def shutdown(self, wait: bool = True, release_leases: bool = True) -> None:
        """Stop scheduling (``wait``: let running jobs finish), then give up this node's leases so another
        node takes the jobs over at its next run instead of after the leases expire."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=wait)
        if release_leases:
            for lease in self.leases.values():
                try:
                    lease.release()
                except SQLAlchemyError as error:  # they expire by themselves
                    log.warning("housekeeping lease not released", extra={"job": lease.name,
                                                                          "error": type(error).__name__})
        log.info("housekeeping stopped", extra={"node": self.node_name})


def _loggable(result: Any) -> dict[str, Any]:
    """A result's counts and names for the log (job results carry ids, names and counts, never PHI)."""
    try:
        fields = asdict(result)
    except TypeError:
        return {}
    fields.pop("counts", None)  # reconciliation's per-hour rows: in the reconciliation table
    return {f"result_{key}": value for key, value in fields.items()}
