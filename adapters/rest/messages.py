"""Messages as received: ``GET /api/v1/messages`` (search, newest first, paged, never the raw content) and
``GET /api/v1/messages/{id}`` (the trail of one message: its row, readings, alerts, ACKs, duplicates).

The raw content (PHI) is answered only when asked with ``raw=true`` by an authorised caller (auth.is_authorised:
a valid API key when keys are configured, else a loopback client); asked for by anyone else it is 401/403.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from sqlalchemy import Connection, Select, or_, select
from sqlalchemy.engine import Row

from adapters.rest.alerts import ALERTS
from adapters.rest.auth import is_authorised, require_read_key
from adapters.rest.deps import Store
from adapters.rest.json_rows import row_json
from adapters.rest.paging import PageParams, newest_first, page_json
from adapters.rest.params import PatientFilter, Since, Until, stored_time
from adapters.rest.readings import READINGS
from adapters.sql_tables import alerts as a
from adapters.sql_tables import device_readings as r
from adapters.sql_tables import messages as m
from engine.channel import ACK_SEPARATOR

router = APIRouter(prefix="/api/v1", tags=["messages"], dependencies=[Depends(require_read_key)])

MESSAGES = select(m.c.id, m.c.route, m.c.control_id, m.c.sending_application, m.c.sending_facility,
                  m.c.message_type, m.c.version, m.c.content_hash, m.c.peer, m.c.status, m.c.ack_code, m.c.error,
                  m.c.reading_count, m.c.duplicate_of, m.c.received_at, m.c.processed_at)

Status = Literal["STORED", "FILTERED", "ERROR"]
MessageId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the message's id")]
RouteFilter = Annotated[str | None, Query(min_length=1, max_length=100)]
ControlIdFilter = Annotated[str | None, Query(min_length=1, max_length=200, description="MSH-10 or idempotency key")]
RawWanted = Annotated[bool, Query(description="answer the raw content too (authorised callers only)")]


@router.get("/messages", summary="Messages received, newest first (without their content)")
def list_messages(store: Store, page: PageParams, status: Status | None = None, route: RouteFilter = None,
                  control_id: ControlIdFilter = None, patient_id: PatientFilter = None, since: Since = None,
                  until: Until = None) -> dict[str, Any]:
    statement: Select = MESSAGES
    for column, value in ((m.c.status, status), (m.c.route, route), (m.c.control_id, control_id)):
        if value is not None:
            statement = statement.where(column == value)
    if patient_id is not None:
        statement = statement.where(m.c.id.in_(select(r.c.message_id).where(r.c.patient_id == patient_id)))
    if since is not None:
        statement = statement.where(m.c.received_at >= stored_time(since))
    if until is not None:
        statement = statement.where(m.c.received_at < stored_time(until))
    with store.engine.connect() as conn:
        rows = list(conn.execute(newest_first(statement, m.c.received_at, m.c.id, page)))
    return page_json(rows, page, "received_at")


@router.get("/messages/{message_id}", summary="The trail of one message: readings, alerts, ACKs, duplicates")
def message_trail(store: Store, request: Request, message_id: MessageId, raw: RawWanted = False) -> dict[str, Any]:
    if raw and not is_authorised(request):
        _refuse_raw(request)
    with store.engine.connect() as conn:
        row = conn.execute(MESSAGES.add_columns(m.c.ack, m.c.raw).where(m.c.id == message_id)).first()
        if row is None:
            raise HTTPException(404, f"there is no message {message_id}")
        readings = conn.execute(READINGS.where(r.c.message_id == message_id).order_by(r.c.id)).all()
        alerts = _alerts_of(conn, readings)
        duplicates = conn.execute(_duplicates_of(row)).all()
    message = row_json(row)
    acks, content = message.pop("ack"), message.pop("raw")
    return {"message": message, "raw": content if raw else None,
            "acks": acks.split(ACK_SEPARATOR) if acks else [],
            "readings": [row_json(reading) for reading in readings],
            "alerts": [row_json(alert) for alert in alerts],
            "duplicates": [row_json(duplicate) for duplicate in duplicates]}


def _alerts_of(conn: Connection, readings: list[Row]) -> list[Row]:
    """Alerts first raised or last updated by one of these readings (the patient index narrows the search)."""
    if not readings:
        return []
    ids = [reading.id for reading in readings]
    patients = sorted({reading.patient_id for reading in readings})
    return conn.execute(ALERTS.where(a.c.patient_id.in_(patients),
                                     or_(a.c.reading_id.in_(ids), a.c.last_reading_id.in_(ids)))
                        .order_by(a.c.id)).all()


def _duplicates_of(row: Row) -> Select:
    """Messages kept with ``duplicate_of`` pointing at this one; they share its key, whose index finds them."""
    return (MESSAGES.where(m.c.control_id == row.control_id, m.c.sending_application == row.sending_application,
                           m.c.sending_facility == row.sending_facility, m.c.duplicate_of == row.id)
            .order_by(m.c.received_at, m.c.id))


def _refuse_raw(request: Request) -> None:
    if request.app.state.api.api_keys:
        raise HTTPException(401, "the raw content needs a valid API key (Authorization: Bearer <key> or X-API-Key)",
                            headers={"WWW-Authenticate": 'Bearer realm="vitalsstream"'})
    raise HTTPException(403, "without API keys the raw content is answered to loopback clients only")
