"""Parameter types shared by the endpoints: vitals by name, ids within the columns' ranges."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import Path, Query

from adapters.sql_store import utc_naive
from transforms.vitals import VITALS

# The vitals we store (transforms.vitals.VITALS); FastAPI lists them in a 422 and in the OpenAPI schema.
Vital = StrEnum("Vital", {name: name for name in VITALS})  # type: ignore[misc]

AlertId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the alert's id")]
PatientId = Annotated[str, Path(min_length=1, max_length=100)]
DeviceId = Annotated[str, Path(min_length=1, max_length=200)]
PatientFilter = Annotated[str | None, Query(min_length=1, max_length=100)]
DeviceFilter = Annotated[str | None, Query(min_length=1, max_length=200)]
Since = Annotated[datetime | None, Query(alias="from", description="ISO 8601, inclusive; naive is UTC")]
Until = Annotated[datetime | None, Query(alias="to", description="ISO 8601, exclusive; naive is UTC")]


def stored_time(moment: datetime) -> datetime:
    """A query time as the tables hold it: UTC without zone (naive input is taken as UTC)."""
    return utc_naive(moment)
