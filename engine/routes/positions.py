"""YAML read with positions: every value and every key keeps the line and column it was written at.

PyYAML's ``compose`` gives a node tree whose nodes carry ``start_mark``; we turn it into plain Python
values (dicts, lists, scalars) plus two maps from a value's path (``('source', 'port')``) to where its
value and its key start. String values are interpolated here (``${VAR}``), so an unset variable is
reported at the value that uses it. Duplicate keys, which PyYAML would silently overwrite, are errors.
Numbers in YAML 1.1's surprising forms (``0002`` is octal 2 there) stay text as written.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from engine.routes.errors import ConfigError, Loc, dotted
from engine.routes.interpolation import InterpolationError, interpolate

_STR_TAG = "tag:yaml.org,2002:str"
_INT_TAG = "tag:yaml.org,2002:int"
_DECIMAL = re.compile(r"[-+]?(0|[1-9][0-9]*)")


@dataclass(frozen=True)
class Position:
    """1-based line and column."""

    line: int
    column: int


@dataclass
class Document:
    """One YAML file as plain data, with where each value and key was written."""

    file: Path
    data: Any = None
    parsed: bool = False  # the YAML was read (there may still be errors in values)
    values: dict[Loc, Position] = field(default_factory=dict)
    keys: dict[Loc, Position] = field(default_factory=dict)
    errors: list[ConfigError] = field(default_factory=list)
    broken: set[Loc] = field(default_factory=set)  # values already reported (the schema need not repeat it)

    def value_at(self, path: Loc) -> Position:
        """Where the value at ``path`` starts; for a value that is not there, where its parent starts."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.values:
                return self.values[path[:end]]
        return Position(1, 1)

    def key_at(self, path: Loc) -> Position:
        """Where the key of the entry at ``path`` is written (its value's position when there is no key)."""
        return self.keys.get(path) or self.value_at(path)

    def error(self, where: Position, path: Loc, message: str) -> ConfigError:
        return ConfigError(self.file, where.line, where.column, dotted(path), message)


def read_document(file: Path, env: Mapping[str, str]) -> Document:
    """The file read, composed and converted; problems (unreadable, bad YAML, unset variables) in ``errors``."""
    document = Document(file)
    text = ""
    try:
        text = file.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except OSError as error:
        document.errors.append(ConfigError(file, 0, 0, "", f"cannot read: {error.strerror}"))
    except UnicodeDecodeError as error:
        document.errors.append(ConfigError(file, 0, 0, "", f"not UTF-8 text: {error.reason}"))
    except yaml.MarkedYAMLError as error:
        document.errors.append(_syntax_error(file, error, text))
    else:
        document.data = {} if node is None else _Converter(document, env).value(node, ())
        document.parsed = True
    return document


def _syntax_error(file: Path, error: yaml.MarkedYAMLError, text: str) -> ConfigError:
    mark = error.problem_mark or error.context_mark
    message = " ".join(part for part in (error.context, error.problem) if part) or "not valid YAML"
    line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
    if "flow" in message and "${" in "".join(text.splitlines()[max(line - 2, 0):line]):
        message += " (inside {...} or [...], quote values that use ${...}: port: \"${PORT}\")"
    return ConfigError(file, line, column, "", f"YAML syntax: {message}")


def _position(node: Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


class _Converter:
    """Node tree -> plain values, recording positions and problems in the document."""

    def __init__(self, document: Document, env: Mapping[str, str]):
        self.document = document
        self.env = env
        self.scalars = SafeConstructor()

    def value(self, node: Node, path: Loc) -> Any:
        self.document.values[path] = _position(node)
        if isinstance(node, MappingNode):
            return self.mapping(node, path)
        if isinstance(node, SequenceNode):
            return [self.value(item, (*path, index)) for index, item in enumerate(node.value)]
        return self.scalar(node, path)

    def mapping(self, node: MappingNode, path: Loc) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.value == "<<":
                self._problem(key_node, path, "keys must be plain names (no complex keys, no '<<' merges)")
                continue
            key = key_node.value
            if key in result:
                first = self.document.keys[(*path, key)]
                self._problem(key_node, (*path, key), f"duplicate key '{key}' (first written at line {first.line})")
                continue
            self.document.keys[(*path, key)] = _position(key_node)
            result[key] = self.value(value_node, (*path, key))
        return result

    def scalar(self, node: Node, path: Loc) -> Any:
        if node.tag == _INT_TAG and not _DECIMAL.fullmatch(node.value):
            return node.value  # YAML 1.1 octal, hex, 1_000, 1:30: kept as written (code: 0002 stays "0002")
        try:
            value = self.scalars.construct_object(node)
        except yaml.constructor.ConstructorError as error:
            self._problem(node, path, error.problem or "cannot read this value")
            self.document.broken.add(path)
            return None
        if node.tag != _STR_TAG or not isinstance(value, str):
            return value
        try:
            return interpolate(value, self.env)
        except InterpolationError as error:
            self._problem(node, path, str(error))
            self.document.broken.add(path)
            return value

    def _problem(self, node: Node, path: Loc, message: str) -> None:
        self.document.errors.append(self.document.error(_position(node), path, message))
