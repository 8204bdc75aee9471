"""422 answers shaped like FastAPI's own, for checks made in the endpoint (cursor, band order)."""
from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError


def invalid(location: tuple[str, ...], message: str, value: Any) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": location, "msg": message, "input": value}])
