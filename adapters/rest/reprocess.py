"""POST /api/v1/messages/{id}/reprocess: send a refused message through its route again.

For a message that was refused (an unknown code or unit the route has learned since, a database outage):
its stored raw content goes through the channel as a new message linked by ``reprocess_of``; the exact
resend check is skipped for it, everything else applies. A stored message is not reprocessed (its readings
would be stored twice), nor one whose raw content retention has pruned, nor one whose route is gone.
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from adapters.rest.auth import require_write_key
from adapters.rest.deps import Store
from adapters.sql_tables import messages
from engine.channel import Inbound, Receipt
from transforms.hl7.charset import encode

router = APIRouter(prefix="/api/v1", tags=["messages"], dependencies=[Depends(require_write_key)])
MessageId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the message's id")]


@router.post("/messages/{message_id}/reprocess", status_code=201, summary="Send a refused message again")
async def reprocess(message_id: MessageId, request: Request, store: Store) -> JSONResponse:
    with store.engine.connect() as conn:
        row = conn.execute(select(messages.c.route, messages.c.raw, messages.c.status, messages.c.message_type)
                           .where(messages.c.id == message_id)).one_or_none()
    if row is None:
        raise HTTPException(404, f"message {message_id} does not exist")
    route = request.app.state.routes.get(row.route)
    refusal = _refusal(message_id, row.status, row.raw, row.message_type, route is None, row.route)
    if refusal:
        raise HTTPException(409, refusal)
    receipt: Receipt = await request.app.state.submit(
        Inbound(encode(row.raw), route, peer="reprocess", reprocess_of=message_id))
    if receipt.message_id is None:
        raise HTTPException(503, "the message could not be stored; reprocess it again later")
    return JSONResponse(_answer(receipt), status_code=201)


def _refusal(message_id: int, status: str, raw: str | None, message_type: str, no_route: bool,
             route: str) -> str:
    if status == "STORED":
        return f"message {message_id} is stored already: reprocessing would store its readings twice"
    if raw is None:
        return f"message {message_id} has no raw content any more (retention pruned it)"
    if message_type in ("REST", "SOAP"):
        return f"message {message_id} came as a {message_type} submission: its caller sends it again"
    if no_route:
        return f"message {message_id} came through route {route!r}, which the engine does not run now"
    return ""


def _answer(receipt: Receipt) -> dict[str, Any]:
    return {"message_id": receipt.message_id, "status": receipt.status, "ack_codes": receipt.ack_codes,
            "readings": receipt.readings, "error": receipt.error or None}
