"""Readiness: ``GET /readyz`` is 200 when the store answers ``SELECT 1`` in time, else 503 with the reason."""
from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from adapters.sql_store import SqlStore

READY_TIMEOUT_SECONDS = 3.0

router = APIRouter()


def ping(store: SqlStore) -> None:
    with store.engine.connect() as conn:
        conn.execute(text("SELECT 1")).scalar_one()


@router.get("/readyz", summary="Readiness: the database answers")
async def readyz(request: Request) -> JSONResponse:
    store: SqlStore | None = request.app.state.store
    reason = await _not_ready_because(store)
    if reason is None:
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)


async def _not_ready_because(store: SqlStore | None) -> str | None:
    if store is None:
        return "no database is configured"
    try:
        await asyncio.wait_for(run_in_threadpool(ping, store), READY_TIMEOUT_SECONDS)
    except TimeoutError:
        return f"the database did not answer within {READY_TIMEOUT_SECONDS:g} s"
    except SQLAlchemyError as error:
        return f"the database is not reachable ({type(error).__name__})"
    return None
