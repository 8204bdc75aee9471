"""What every route config model shares: unknown keys are errors, and the helpers lint rules use.

A model's fields are its documentation: each has a description and an example (a test checks this), and
docs/routes-reference.md is generated from them (scripts/routes_reference.py). Cross-field checks are lint
rules written as validators that raise ``broken_rule``; they run even when other parts of the file are
wrong, so one check reports everything.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

from engine.routes.errors import Loc


class ConfigModel(BaseModel):
    """Base of every route config model."""

    # Unknown keys are errors; a number may stand for a string (codes like 150021 written unquoted).
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, frozen=True)


def broken_rule(message: str, at: Loc = ()) -> PydanticCustomError:
    """The error a lint rule raises; ``at`` points below the validated value (a field of a model)."""
    return PydanticCustomError("lint", message, {"at": at})


def did_you_mean(word: str, choices: Iterable[str], what: str = "one of") -> str:
    """`` - did you mean 'port'?`` for a near miss, else the list of choices."""
    choices = sorted(choices)
    close = difflib.get_close_matches(word, choices, n=1)
    if close:
        return f" - did you mean '{close[0]}'?"
    return f" ({what}: {', '.join(choices)})" if choices else ""
