"""POST /api/v1/devices/{device_id}/readings: a device or app submits vitals as JSON.

The body goes through the same channel as HL7: kept as received, mapped (transforms/rest_json.py), stored
with its readings and evaluated for alerts in one transaction (group commit in the engine); the answer is
written only after that commit: 201 with the stored readings and the alerts they raised or updated.
An ``Idempotency-Key`` header makes a retry safe: the same key and body answer 200 with the first result,
storing nothing; the same key with another body is a 409.
"""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import or_, select

from adapters.rest.auth import require_write_key
from adapters.rest.deps import Store
from adapters.rest.invalid import invalid
from adapters.rest.json_rows import row_json
from adapters.rest.params import DeviceId
from adapters.sql_store import SqlStore
from adapters.sql_tables import alerts, device_readings
from engine.channel import Route, Submission
from transforms.rest_json import FIELDS, readings_from_body

router = APIRouter(prefix="/api/v1", tags=["readings"], dependencies=[Depends(require_write_key)])
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(days=1)

Reading = Annotated[float | None, Field(None, allow_inf_nan=False)]


class VitalsBody(BaseModel):
    """The original VitalsStream body; values in canonical units, with physiologically possible ranges."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    device_id: str | None = Field(None, max_length=200, description="must equal the path's device id")
    patient_id: str = Field(min_length=1, max_length=100, examples=["MRN1001"])
    timestamp: datetime = Field(description="ISO 8601; without an offset it is UTC",
                                examples=["2024-03-05T10:10:00Z"])
    heart_rate: Reading = Field(None, ge=0, le=350, description="/min")
    spo2: Reading = Field(None, ge=0, le=100, description="%")
    temperature_c: Reading = Field(None, ge=10, le=50, description="Cel")
    resp_rate: Reading = Field(None, ge=0, le=150, description="/min")
    bp_systolic: Reading = Field(None, ge=0, le=350, description="mm[Hg]")
    bp_diastolic: Reading = Field(None, ge=0, le=300, description="mm[Hg]")
    glucose_mmol_l: Reading = Field(None, ge=0, le=100, description="mmol/L")

    @field_validator("timestamp")
    @classmethod
    def _plausible_utc(cls, moment: datetime) -> datetime:
        """UTC; from 1970 to a day ahead of our clock (a device whose clock is off is told, not believed)."""
        try:
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        except OverflowError:
            raise ValueError("timestamp is out of range") from None
        if not EARLIEST <= moment <= datetime.now(UTC) + CLOCK_SKEW:
            raise ValueError(f"timestamp {moment.isoformat()} is not plausible: before 1970 or more than a day "
                             "ahead of the engine's clock")
        return moment

    @model_validator(mode="after")
    def _some_vital(self) -> VitalsBody:
        if all(getattr(self, name) is None for name in FIELDS):
            raise ValueError(f"no vital sign given: send at least one of {', '.join(FIELDS)}")
        return self


@router.post("/devices/{device_id}/readings", status_code=201, summary="Submit vital signs from a device")
async def submit(device_id: DeviceId, body: VitalsBody, request: Request, store: Store,
                 idempotency_key: Annotated[str | None, Header(max_length=200)] = None) -> JSONResponse:
    if body.device_id is not None and body.device_id != device_id:
        raise invalid(("body", "device_id"), f"device_id {body.device_id!r} disagrees with the path's "
                      f"{device_id!r}", body.device_id)
    key = idempotency_key or uuid.uuid4().hex
    readings = readings_from_body(body.model_dump(), device_id, key)
    peer = f"{request.client.host}:{request.client.port}" if request.client else ""
    route: Route = request.app.state.rest_route
    submission = Submission(await request.body(), route, "REST", device_id, key, readings, peer)
    receipt = await request.app.state.submit(submission)
    if receipt.message_id is None:
        raise HTTPException(503, "the readings could not be stored; send them again later")
    if receipt.status != "STORED":
        raise HTTPException(409, f"Idempotency-Key {key!r} was already used for another body")
    result = stored_result(store, receipt.message_id)
    return JSONResponse(result, status_code=200 if receipt.duplicate else 201)


def stored_result(store: SqlStore, message_id: int) -> dict[str, Any]:
    """The readings a message stored and the alerts whose first or newest reading is one of them."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(device_readings).where(device_readings.c.message_id == message_id)
                            .order_by(device_readings.c.id)).all()
        ids = [row.id for row in rows]
        raised = conn.execute(select(alerts).where(or_(alerts.c.reading_id.in_(ids),
                                                       alerts.c.last_reading_id.in_(ids)))
                              .order_by(alerts.c.id)).all() if ids else []
    return {"message_id": message_id, "readings": [row_json(r) for r in rows],
            "alerts": [row_json(a) for a in raised]}
