"""Config errors: where (file:line:column), which field (dotted path) and what is wrong.

Every check - YAML syntax, interpolation, schema, lint rules, cross-file rules - reports ``ConfigError``
values instead of raising, so one run lists every problem of every file. ``RouteConfigError`` carries
that list when a caller needs an exception (``load_routes``).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

Loc = tuple[str | int, ...]


def dotted(path: Loc) -> str:
    """``('accept', 'message_types', 0)`` -> ``accept.message_types[0]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


@dataclass(frozen=True, order=True)
class ConfigError:
    """One problem in a config file. Lines and columns count from 1; 0 means the file as a whole."""

    file: Path
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else str(self.file)
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class RouteConfigError(Exception):
    """Route or route-test files that do not pass the checks; ``errors`` lists every problem found."""

    def __init__(self, errors: Iterable[ConfigError]):
        self.errors = sorted(set(errors))
        super().__init__("\n".join(map(str, self.errors)))
