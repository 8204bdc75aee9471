"""``GET /api/v1/readings``: stored readings, newest observation first, filtered and paged."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import Select, select

from adapters.rest.auth import require_read_key
from adapters.rest.deps import Store
from adapters.rest.paging import PageParams, newest_first, page_json
from adapters.rest.params import DeviceFilter, PatientFilter, Since, Until, Vital, stored_time
from adapters.sql_tables import device_readings as r

router = APIRouter(prefix="/api/v1", tags=["readings"], dependencies=[Depends(require_read_key)])

READINGS = select(r.c.id, r.c.message_id, r.c.patient_id, r.c.device_id, r.c.vital, r.c.value, r.c.unit,
                  r.c.comparator, r.c.observed_at, r.c.status, r.c.source_system, r.c.source_code,
                  r.c.source_value, r.c.source_unit, r.c.created_at)


@router.get("/readings", summary="Readings, newest observed first")
def list_readings(store: Store, page: PageParams, device_id: DeviceFilter = None, patient_id: PatientFilter = None,
                  vital: Vital | None = None, since: Since = None, until: Until = None) -> dict[str, Any]:
    statement = _filtered(READINGS, device_id, patient_id, vital, since, until)
    with store.engine.connect() as conn:
        rows = list(conn.execute(newest_first(statement, r.c.observed_at, r.c.id, page)))
    return page_json(rows, page, "observed_at")


def _filtered(statement: Select, device_id: str | None, patient_id: str | None, vital: Vital | None,
              since: Any, until: Any) -> Select:
    if device_id is not None:
        statement = statement.where(r.c.device_id == device_id)
    if patient_id is not None:
        statement = statement.where(r.c.patient_id == patient_id)
    if vital is not None:
        statement = statement.where(r.c.vital == vital.value)
    if since is not None:
        statement = statement.where(r.c.observed_at >= stored_time(since))
    if until is not None:
        statement = statement.where(r.c.observed_at < stored_time(until))
    return statement
