"""``${VAR}`` and ``${VAR:-default}`` in config strings, filled in from an environment mapping.

- ``${VAR}``: the value of VAR; an error when VAR is not set.
- ``${VAR:-default}``: the value of VAR, or ``default`` when VAR is unset or empty (as in a shell).
- ``${VAR:+word}``: ``word`` when VAR is set and not empty, else empty (as in a shell), e.g.
  ``enabled: ${VITALS_EHR_URL:+true}``.
- ``$${``: a literal ``${`` (``$$`` elsewhere, and a lone ``$``, stay as written).

Only string values are interpolated, never keys, and the result stays a string: ``port: ${PORT}``
becomes ``"2575"``, which the schema then reads as the number it expects.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_INSIDE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::([-+])(.*))?", re.DOTALL)


class InterpolationError(ValueError):
    """A reference that cannot be filled in; the message says which and why."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """``text`` with every ``${...}`` reference replaced; raises InterpolationError for the first bad one."""
    return _REFERENCE.sub(lambda match: _replacement(match, env), text)


def _replacement(match: re.Match[str], env: Mapping[str, str]) -> str:
    if match.group(0) == "$${":
        return "${"
    inside = match.group(1)
    if inside is None:
        raise InterpolationError("'${' without a closing '}' (write '$${' for a literal '${')")
    reference = _INSIDE.fullmatch(inside)
    if reference is None:
        raise InterpolationError(f"'${{{inside}}}' is not ${{NAME}}, ${{NAME:-default}} or ${{NAME:+word}}")
    name, operator, default = reference.groups()
    value = env.get(name)
    if operator == "+":
        return default if value else ""
    if value:
        return value
    if default is not None:
        return default
    if value is None:
        raise InterpolationError(f"environment variable {name} is not set (write ${{{name}:-default}} "
                                 "to give a default)")
    return value
