"""Database failures mapped to answers once: a value the database refuses is 422, anything else 503.

Bad input is caught by validation first; these handlers keep the rest from becoming a 500 with a stack
trace. The answer names the kind of failure, never the statement or its parameters (PHI).
"""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, SQLAlchemyError

log = logging.getLogger("vitalsstream.rest")


async def _refused_value(_request: Request, _error: Exception) -> JSONResponse:
    return JSONResponse({"detail": "the database refused a value of this request"}, status_code=422)


async def _unavailable(request: Request, error: Exception) -> JSONResponse:
    log.warning("database failed an API request", extra={"path": request.url.path, "error": type(error).__name__})
    return JSONResponse({"detail": f"the database is not available ({type(error).__name__})"}, status_code=503)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DataError, _refused_value)
    app.add_exception_handler(SQLAlchemyError, _unavailable)
