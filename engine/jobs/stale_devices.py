"""Stale-device detection: a device silent for longer than its expected interval raises ``device_offline``.

1. Learn: readings past the watermark (``job_state`` ``stale_devices.last_reading_id``) are read in id
   ranges, grouped by device; each device's latest reading gives ``device_status`` its route, patient and
   ``last_seen_at`` (when that reading was stored: the engine's clock, not the device's). The whole readings
   table is never scanned: a first run starts ``FIRST_RUN_IDS`` readings before the newest, and every run
   re-reads the last ``OVERLAP_IDS`` ids, so a reading whose transaction committed after a higher id was
   already seen (concurrent writers) is not missed.
2. Check: each device's interval comes from its route's ``devices:`` settings (a per-device override, else
   the route's interval; 0: not watched). Overdue -> ``offline_since`` set and an incident raised, once per
   silence (an operator may resolve it, e.g. for a monitor unplugged on purpose, and it stays quiet until
   the device sends again). Heard from within its interval again -> cleared.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, func, insert, select, update
from sqlalchemy.engine import Row

from adapters.sql_store import SqlStore, utc_naive
from adapters.sql_tables import device_readings, device_status, messages
from engine.incidents import clear_incident, raise_incident
from engine.jobs.job_state import read_state, write_state
from engine.routes.housekeeping import DevicesConfig

WATERMARK = "stale_devices.last_reading_id"
CHUNK_IDS = 10_000  # readings ids per learning transaction
OVERLAP_IDS = 1_000  # re-read each run: readings committed late, below ids already seen
FIRST_RUN_IDS = 100_000  # how far back a first run looks
UNCONFIGURED = DevicesConfig()  # a route without settings (or no longer configured) gets the defaults


@dataclass(frozen=True)
class StaleDevicesResult:
    learned: int  # device_status rows inserted or moved forward
    watermark: int  # the last readings id seen
    went_offline: list[str] = field(default_factory=list)  # device ids
    came_back: list[str] = field(default_factory=list)

    @property
    def noteworthy(self) -> bool:
        return bool(self.went_offline or self.came_back)


def check_devices(store: SqlStore, devices: Mapping[str, DevicesConfig], now: datetime, *,
                  chunk_ids: int = CHUNK_IDS, overlap_ids: int = OVERLAP_IDS,
                  first_run_ids: int = FIRST_RUN_IDS) -> StaleDevicesResult:
    """Learn devices from new readings, then raise or clear device_offline; ``devices`` by route name."""
    moment = utc_naive(now)
    learned, watermark = _learn(store, moment, chunk_ids, overlap_ids, first_run_ids)
    went_offline, came_back = _check(store, devices, moment)
    return StaleDevicesResult(learned, watermark, went_offline, came_back)


def _learn(store: SqlStore, moment: datetime, chunk_ids: int, overlap_ids: int,
           first_run_ids: int) -> tuple[int, int]:
    with store.engine.connect() as conn:
        newest = conn.execute(select(func.max(device_readings.c.id))).scalar_one_or_none() or 0
        state = read_state(conn, WATERMARK)
    seen = int(state) if state is not None else None
    start = max(0, newest - first_run_ids) if seen is None else max(0, seen - overlap_ids)
    learned, watermark = 0, seen or 0
    while start < newest:
        end = min(start + chunk_ids, newest)
        watermark = max(watermark, end)
        with store.transaction() as tx:
            learned += _learn_range(tx.conn, start, end)
            write_state(tx.conn, WATERMARK, str(watermark), moment)
        start = end
    return learned, watermark


def _learn_range(conn: Connection, after_id: int, up_to_id: int) -> int:
    """Move device_status forward to the latest reading of each device with a reading in (after, up_to]."""
    r = device_readings.c
    in_range = and_(r.id > after_id, r.id <= up_to_id)
    latest = select(func.max(r.id)).where(in_range).group_by(r.device_id)
    rows = conn.execute(select(r.device_id, r.patient_id, r.created_at, messages.c.route)
                        .join_from(device_readings, messages, messages.c.id == r.message_id)
                        .where(r.id.in_(latest.scalar_subquery()))).all()
    if not rows:
        return 0
    # A subquery, not a list of ids: SQL Server takes at most 2,100 parameters a statement.
    known = {row.device_id: row.last_seen_at for row in conn.execute(
        select(device_status.c.device_id, device_status.c.last_seen_at)
        .where(device_status.c.device_id.in_(select(r.device_id).where(in_range).scalar_subquery())))}
    moved = 0
    for row in rows:
        values = {"route": row.route, "patient_id": row.patient_id, "last_seen_at": row.created_at}
        if row.device_id not in known:
            conn.execute(insert(device_status).values(device_id=row.device_id, expected_interval_seconds=0,
                                                      **values))
        elif known[row.device_id] < row.created_at:
            conn.execute(update(device_status).where(device_status.c.device_id == row.device_id).values(values))
        else:
            continue  # a re-read (overlap): already known as seen later
        moved += 1
    return moved


def _check(store: SqlStore, devices: Mapping[str, DevicesConfig],
           moment: datetime) -> tuple[list[str], list[str]]:
    went_offline, came_back = [], []
    with store.transaction() as tx:
        for device in tx.conn.execute(select(device_status).order_by(device_status.c.device_id)).all():
            interval = devices.get(device.route, UNCONFIGURED).interval_for(device.device_id)
            silent = interval > 0 and moment - device.last_seen_at > timedelta(seconds=interval)
            changes: dict[str, object] = {}
            if interval != device.expected_interval_seconds:
                changes["expected_interval_seconds"] = interval
            if silent and device.offline_since is None:
                changes["offline_since"] = moment
                _raise(tx.conn, device, interval, moment)
                went_offline.append(device.device_id)
            elif not silent and device.offline_since is not None:
                changes["offline_since"] = None
                clear_incident(tx.conn, "device_offline", device.device_id, moment)
                came_back.append(device.device_id)
            if changes:
                tx.conn.execute(update(device_status).where(device_status.c.device_id == device.device_id)
                                .values(changes))
    return went_offline, came_back


def _raise(conn: Connection, device: Row, interval: int, moment: datetime) -> None:
    silent_minutes = int((moment - device.last_seen_at).total_seconds() // 60)
    raise_incident(conn, "device_offline", device.device_id, "warning",
                   f"device {device.device_id} on route {device.route}: nothing for {silent_minutes} min "
                   f"(expected every {interval} s)",
                   {"device_id": device.device_id, "route": device.route, "last_seen_at": device.last_seen_at,
                    "expected_interval_seconds": interval}, moment)
