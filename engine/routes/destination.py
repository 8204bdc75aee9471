"""Destination kinds: where a route's readings go. Today one kind, ``sql``: the engine's own database.

Every message is stored (with its readings and alerts) before it is acknowledged; that store is the
``sql`` destination (VITALS_DB_URL). Later kinds (EHR over SOAP, notifications) are outbox
destinations, each one more model here.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from engine.routes.base import ConfigModel


class SqlDestination(ConfigModel):
    """Store messages, readings and alerts in the engine's database (VITALS_DB_URL)."""

    kind: Literal["sql"] = Field(description="Destination kind.", examples=["sql"])


DESTINATION_KINDS = (SqlDestination,)
