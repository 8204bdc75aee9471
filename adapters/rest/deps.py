"""What endpoints take from the application: the store, as a FastAPI dependency."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from adapters.sql_store import SqlStore


def store_of(request: Request) -> SqlStore:
    store: SqlStore = request.app.state.store
    return store


Store = Annotated[SqlStore, Depends(store_of)]
