"""Alert bands: ``GET /api/v1/thresholds``; PUT one vital's band globally, per patient or per device
(insert or update the row of that scope); DELETE a patient's or device's override.

The most specific band wins when alerts are evaluated (device, then patient, then global).
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy import select

from adapters.rest.auth import require_read_key, require_write_key
from adapters.rest.bands import Bands, order_problems
from adapters.rest.deps import Store
from adapters.rest.json_rows import row_json
from adapters.rest.params import DeviceId, PatientId, Vital
from adapters.sql_store import SqlStore
from adapters.sql_tables import alert_thresholds as t
from engine.operator_actions import band_scope, delete_band, put_band
from transforms.vitals import VITALS

router = APIRouter(prefix="/api/v1/thresholds", tags=["thresholds"], dependencies=[Depends(require_read_key)])
writes = [Depends(require_write_key)]

THRESHOLDS = select(t.c.id, t.c.vital, t.c.patient_id, t.c.device_id, t.c.unit, t.c.critical_low,
                    t.c.warning_low, t.c.warning_high, t.c.critical_high, t.c.updated_at)
SCOPES = ("global", "patient", "device")


@router.get("", summary="Every band: global, per patient, per device")
def list_thresholds(store: Store) -> dict[str, Any]:
    with store.engine.connect() as conn:
        items = [{"scope": _scope_of(row.patient_id, row.device_id), **row_json(row)}
                 for row in conn.execute(THRESHOLDS)]
    items.sort(key=lambda i: (SCOPES.index(i["scope"]), i["vital"], i["patient_id"] or "", i["device_id"] or ""))
    return {"items": items}


@router.put("/global/{vital}", dependencies=writes, summary="Set the global band of a vital")
def put_global(store: Store, vital: Vital, bands: Bands, response: Response) -> dict[str, Any]:
    return _put(store, response, vital, None, None, bands)


@router.put("/patients/{patient_id}/{vital}", dependencies=writes, summary="Set a patient's band")
def put_patient(store: Store, patient_id: PatientId, vital: Vital, bands: Bands, response: Response) -> dict[str, Any]:
    return _put(store, response, vital, patient_id, None, bands)


@router.put("/devices/{device_id}/{vital}", dependencies=writes, summary="Set a device's band")
def put_device(store: Store, device_id: DeviceId, vital: Vital, bands: Bands, response: Response) -> dict[str, Any]:
    return _put(store, response, vital, None, device_id, bands)


@router.delete("/patients/{patient_id}/{vital}", dependencies=writes, status_code=204,
               summary="Remove a patient's band (the device or global band applies again)")
def delete_patient(store: Store, patient_id: PatientId, vital: Vital) -> Response:
    return _delete(store, vital, patient_id, None)


@router.delete("/devices/{device_id}/{vital}", dependencies=writes, status_code=204,
               summary="Remove a device's band")
def delete_device(store: Store, device_id: DeviceId, vital: Vital) -> Response:
    return _delete(store, vital, None, device_id)


def _scope_of(patient_id: str | None, device_id: str | None) -> str:
    return "patient" if patient_id is not None else "device" if device_id is not None else "global"


def _put(store: SqlStore, response: Response, vital: Vital, patient_id: str | None, device_id: str | None,
         bands: Bands) -> dict[str, Any]:
    problems = order_problems(bands)
    if problems:
        raise RequestValidationError(problems)
    values = {**bands.model_dump(), "unit": VITALS[vital.value].unit}
    created = put_band(store, vital.value, patient_id, device_id, values)
    response.status_code = 201 if created else 200
    with store.engine.connect() as conn:
        row = conn.execute(THRESHOLDS.where(band_scope(vital.value, patient_id, device_id))).one()
    return {"scope": _scope_of(patient_id, device_id), **row_json(row)}


def _delete(store: SqlStore, vital: Vital, patient_id: str | None, device_id: str | None) -> Response:
    if not delete_band(store, vital.value, patient_id, device_id):
        whose = f"patient {patient_id}" if patient_id is not None else f"device {device_id}"
        raise HTTPException(404, f"there is no {vital.value} band for {whose}")
    return Response(status_code=204)
