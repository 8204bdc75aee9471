"""Schema validation of a positioned document: every pydantic error becomes a ConfigError at its place.

Pydantic reports where an error is as a ``loc`` through the model (``('source', 'mllp', 'port')``, where
``mllp`` is the tag of the discriminated union, not a key). We walk that loc through the data to find
the path of keys and list indexes the user wrote, then look the path up in the document's positions.
Messages are rewritten for people who edit YAML: unknown keys get a "did you mean", types say what
was found.
"""
from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from engine.routes.base import did_you_mean
from engine.routes.errors import ConfigError, Loc
from engine.routes.positions import Document

Model = TypeVar("Model", bound=BaseModel)


def validate(document: Document, model: type[Model], context: Mapping[str, Any] | None = None,
             ) -> Model | None:
    """The document's data as ``model``, or None with the problems appended to ``document.errors``."""
    try:
        return model.model_validate(document.data, context=dict(context or {}))
    except ValidationError as invalid:
        for error in invalid.errors(include_url=False):
            located = _located(document, model, error)
            if located is not None:
                document.errors.append(located)
        return None


def _located(document: Document, model: type[BaseModel], error: ErrorDetails) -> ConfigError | None:
    loc = tuple(error["loc"]) + tuple(error.get("ctx", {}).get("at", ()))
    path = data_path(document.data, loc)
    kind = error["type"]
    if kind != "extra_forbidden" and any(path[:end] in document.broken for end in range(len(path) + 1)):
        return None  # already reported while reading (an unset variable, an unreadable value)
    if kind == "extra_forbidden":
        names = fields_at(model, loc[:-1])
        message = f"unknown key '{path[-1]}'" + did_you_mean(str(path[-1]), names, "known keys")
        return document.error(document.key_at(path), path, message)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        path = (*path, "kind")
        expected = ", ".join(kinds_at(model, loc))
        found = f"unknown kind {_shown(error['input'].get('kind'))}" if kind == "union_tag_invalid" else \
            "required key is missing"
        return document.error(document.value_at(path), path, f"{found} (one of: {expected})")
    return document.error(document.value_at(path), path, _message(error))


_EXPECTED = {
    "model_type": "a mapping of keys to values", "model_attributes_type": "a mapping of keys to values",
    "dict_type": "a mapping of keys to values", "list_type": "a list", "int_parsing": "a whole number",
    "int_type": "a whole number", "int_from_float": "a whole number", "float_parsing": "a number",
    "float_type": "a number", "bool_parsing": "true or false", "bool_type": "true or false",
    "string_type": "text",
}


def _message(error: ErrorDetails) -> str:
    kind, found = error["type"], f" (got {_shown(error['input'])})"
    if kind == "missing":
        return "required key is missing"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}" + found
    if kind == "lint":
        return error["msg"]
    if kind in ("too_short", "string_too_short"):
        least = error.get("ctx", {}).get("min_length", 1)
        return "must not be empty" if least == 1 else f"needs at least {least} items"
    text = error["msg"].removeprefix("Value error, ")
    if text.startswith("Input should be "):
        text = "must be " + text.removeprefix("Input should be ")
    return text[:1].lower() + text[1:] + found


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return f"'{value}'" if isinstance(value, str) else str(value)


def data_path(data: Any, loc: Loc) -> Loc:
    """The keys and indexes in the data that ``loc`` leads to, without the union tags pydantic adds."""
    path: list[str | int] = []
    current = data
    for part in loc:
        if isinstance(current, dict) and part not in current and current.get("kind") == part:
            continue  # the tag of a discriminated union
        path.append(part)
        current = _child(current, part)
    return tuple(path)


def _child(data: Any, part: str | int) -> Any:
    if isinstance(data, dict):
        return data.get(part)
    if isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
        return data[part]
    return None


def fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """Field names of the model that ``loc`` (a pydantic loc) leads to; empty when it is not a model."""
    current: Any = model
    for part in loc:
        current = _step(_unwrapped(current), part)
        if current is None:
            return []
    current = _unwrapped(current)
    return list(current.model_fields) if _is_model(current) else []


def kinds_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """The ``kind`` values a discriminated union at ``loc`` accepts."""
    current: Any = model
    for part in loc:
        current = _step(_unwrapped(current), part)
    members = get_args(_unwrapped(current)) or (_unwrapped(current),)
    return [kind for kind in map(_kind, members) if kind]


def _step(annotation: Any, part: str | int) -> Any:
    origin = get_origin(annotation)
    if origin in (list, tuple) and isinstance(part, int):
        return get_args(annotation)[0]
    if origin in (Union, types.UnionType):
        return next((member for member in get_args(annotation) if _kind(member) == part), None)
    if _is_model(annotation):
        if part in annotation.model_fields:
            return annotation.model_fields[part].annotation
        if _kind(annotation) == part:
            return annotation  # the tag of a one-member discriminated union
    return None


def _unwrapped(annotation: Any) -> Any:
    """Without Annotated[...] and without the None of an optional."""
    while True:
        origin = get_origin(annotation)
        members = [a for a in get_args(annotation) if a is not type(None)]
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType) and len(members) == 1:
            annotation = members[0]
        else:
            return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _kind(annotation: Any) -> str | None:
    if not _is_model(annotation) or "kind" not in annotation.model_fields:
        return None
    values = get_args(annotation.model_fields["kind"].annotation)
    return str(values[0]) if values else None
