"""The body of a threshold PUT: four bounds, any of them null (no bound on that side), in order.

critical_low <= warning_low < warning_high <= critical_high wherever both bounds are given: a low bound
must lie below every high bound, and a critical bound may not sit inside its warning bound.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

BOUNDS = ("critical_low", "warning_low", "warning_high", "critical_high")


class Bands(BaseModel):
    """Values in the vital's canonical unit (the unit is set by the API, never taken from the body)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    critical_low: float | None = None
    warning_low: float | None = None
    warning_high: float | None = None
    critical_high: float | None = None


def order_problems(bands: Bands) -> list[dict[str, Any]]:
    """FastAPI-shaped errors, one per pair out of order, located at the later bound of the pair."""
    values = bands.model_dump()
    problems = []
    for position, lower in enumerate(BOUNDS):
        for upper in BOUNDS[position + 1:]:
            low, high = values[lower], values[upper]
            strict = lower.endswith("_low") and upper.endswith("_high")
            if low is None or high is None or (low < high if strict else low <= high):
                continue
            relation = "above" if strict else "at or above"
            problems.append({"type": "value_error", "loc": ("body", upper), "input": high,
                             "msg": f"{upper} ({high:g}) must be {relation} {lower} ({low:g})"})
    return problems
