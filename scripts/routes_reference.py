"""Writes docs/routes-reference.md, every key of a route file, from the route config models in engine/routes/.

The models are the schema, the linter and the documentation at once: every field has a description and an
example (tests/test_routes.py checks it), so the reference is generated, never edited by hand. It has one
section per model reachable from RouteConfig, in the order a route file reads (depth first, fields in
declaration order, ``kind`` first); per key: the YAML key, its type in words, required or its default (as
YAML), the description and the examples (as YAML). The kinds of each ``kind``-chosen union are listed up
front; the rules a model checks across its keys are listed under its table, in the words
``vitalsstream routes check`` prints (read from the validators' ``broken_rule(...)`` calls).

After changing a model, regenerate it:

    .venv/bin/python scripts/routes_reference.py --write     (or: ... > docs/routes-reference.md)
    .venv/bin/python scripts/routes_reference.py --check     exit status 1 while the file is stale

tests/test_routes_reference.py fails while docs/routes-reference.md differs from a fresh generation.
"""
from __future__ import annotations

import argparse
import ast
import inspect
import sys
import textwrap
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, PlainValidator, WrapValidator
from pydantic.fields import FieldInfo

from engine.routes.config import RouteConfig
from engine.routes.transform import UCUM_UNITS
from engine.settings import PROJECT_ROOT
from transforms.vitals import VITALS

REFERENCE = PROJECT_ROOT / "docs" / "routes-reference.md"
WRITE_COMMAND = ".venv/bin/python scripts/routes_reference.py --write"
PRINT_COMMAND = ".venv/bin/python scripts/routes_reference.py > docs/routes-reference.md"
_VALIDATORS = (AfterValidator, BeforeValidator, PlainValidator, WrapValidator)


@dataclass(frozen=True)
class Words:
    """A type in words, for one value (``one``) and for the items of a list (``many``; None: "each ...")."""

    one: str
    many: str | None = None


def _one_of(values: Sequence[str]) -> Words:
    return Words("one of: " + ", ".join(f"`{value}`" for value in values))


_NAME_RULE = "letters, digits, `_`, `-`, `.`"
# Words for the values a validator (Annotated[..., AfterValidator(f)]) lets through, by the validator's
# qualified name. A validator missing here stops the generator: say what it accepts before documenting it.
VALIDATOR_WORDS: dict[str, Words] = {
    "engine.routes.config._message_type": Words("MSH-9 type as `MESSAGE^EVENT` (like `ORU^R01`)",
                                                "MSH-9 types as `MESSAGE^EVENT` (like `ORU^R01`)"),
    "engine.routes.config._name": Words(f"name: {_NAME_RULE}, starting with a letter or digit; at most 100 "
                                        "characters"),
    "engine.routes.source._host": Words("IP address or host name"),
    "engine.routes.source._relative_to_route": Words("file path, relative to the route file's folder",
                                                     "file paths, relative to the route file's folder"),
    "engine.routes.source._existing_file": Words("path of an existing file, relative to the route file's folder"),
    "engine.routes.transform._vital": _one_of(list(VITALS)),
    "engine.routes.transform._ucum": _one_of(sorted(UCUM_UNITS)),
    "engine.routes.transform._time_zone": Words("IANA time zone name (like `Europe/Berlin`, or `UTC`)"),
    "engine.routes.destination._http_url": Words("`http://` or `https://` URL", "`http://` or `https://` URLs"),
    "engine.routes.destination._address": Words("email address", "email addresses"),
    "engine.routes.destination._destination_name": Words(f"name: {_NAME_RULE}; 1 to 100 characters"),
    "engine.routes.destination._empty_is_false": Words("`true` or `false` (empty text counts as `false`)"),
}
_BASE_WORDS = {str: Words("string", "strings"), int: Words("whole number", "whole numbers"),
               float: Words("number", "numbers"), bool: Words("`true` or `false`"),
               Path: Words("file path", "file paths")}
# Defaults the loader sets rather than the model (engine/routes/loading.py).
LOADER_DEFAULTS = {(RouteConfig, "name"): "the file name without `.yaml`"}


# --- the models, in the order a route file reads ---------------------------------------------------------

@dataclass
class Section:
    """One model's section: its title (where it sits in a route file) and who contains it."""

    model: type[BaseModel]
    path: str  # YAML path of its first place: "source.tls", "destinations[]"; "" for the top level
    kind: str | None  # its kind, when a `kind` chooses it
    parents: list[type[BaseModel]] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return self.model.__name__.lower()

    @property
    def title(self) -> str:
        if not self.path:
            return "Route file (top level)"
        return f"`{self.path}` (kind `{self.kind}`)" if self.kind else f"`{self.path}`"


@dataclass(frozen=True)
class KindUnion:
    """A key whose value is one of several models, chosen by its ``kind``."""

    path: str
    members: tuple[type[BaseModel], ...]


def sections(root: type[BaseModel] = RouteConfig) -> tuple[list[Section], list[KindUnion]]:
    """Every model reachable from ``root``, depth first in field order; and the kind unions met on the way."""
    found: dict[type[BaseModel], Section] = {}
    unions: list[KindUnion] = []
    _visit(root, "", None, None, found, unions)
    titles = [section.title for section in found.values()]
    duplicated = {title for title in titles if titles.count(title) > 1}
    if duplicated:
        raise ValueError(f"two models would get the same section title: {', '.join(sorted(duplicated))}")
    return list(found.values()), unions


def _visit(model: type[BaseModel], path: str, kind: str | None, parent: type[BaseModel] | None,
           found: dict[type[BaseModel], Section], unions: list[KindUnion]) -> None:
    if model in found:
        if parent is not None and parent not in found[model].parents:
            found[model].parents.append(parent)
        return
    found[model] = Section(model, path, kind, [parent] if parent else [])
    for name, info in fields(model):
        chosen = info.discriminator is not None
        for child, child_path, union in _models_in(info.annotation, f"{path}.{name}" if path else name, chosen):
            if union is not None and union not in unions:
                unions.append(union)
            _visit(child, child_path, kind_of(child) if union else None, model, found, unions)


def _models_in(annotation: Any, path: str, chosen: bool = False,
               ) -> Iterator[tuple[type[BaseModel], str, KindUnion | None]]:
    """The models a field's annotation holds, each with its YAML path and the kind union it belongs to
    (``chosen``: a discriminator was declared, so even a single model is chosen by its kind)."""
    annotation, chosen = _unwrapped(annotation, chosen)
    origin = get_origin(annotation)
    if _is_model(annotation):
        yield annotation, path, KindUnion(path, (annotation,)) if chosen and kind_of(annotation) else None
    elif origin in (list, tuple, set, frozenset):
        yield from _models_in(get_args(annotation)[0], f"{path}[]")
    elif origin is dict:
        yield from _models_in(get_args(annotation)[1], f"{path}.<key>")
    elif origin in (Union, types.UnionType):
        members = [_strip_annotated(m) for m in get_args(annotation) if m is not type(None)]
        if _is_kind_union(members):
            union = KindUnion(path, tuple(members))
            for member in members:
                yield member, path, union
        else:
            for member in members:
                yield from _models_in(member, path)


def fields(model: type[BaseModel]) -> list[tuple[str, FieldInfo]]:
    """The model's fields in declaration order, ``kind`` first."""
    return sorted(model.model_fields.items(), key=lambda item: item[0] != "kind")


def kind_of(model: type[BaseModel]) -> str | None:
    info = model.model_fields.get("kind")
    values = get_args(info.annotation) if info is not None and get_origin(info.annotation) is Literal else ()
    return str(values[0]) if len(values) == 1 else None


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _is_kind_union(members: Sequence[Any]) -> bool:
    return len(members) > 1 and all(_is_model(m) and kind_of(m) for m in members)


def _strip_annotated(annotation: Any) -> Any:
    return _unwrapped(annotation)[0]


def _unwrapped(annotation: Any, chosen: bool = False) -> tuple[Any, bool]:
    """Without Annotated[...]; and whether its metadata declared a discriminator (Field(discriminator=...))."""
    while get_origin(annotation) is Annotated:
        annotation, *metadata = get_args(annotation)
        chosen = chosen or any(isinstance(item, FieldInfo) and item.discriminator for item in metadata)
    return annotation, chosen


# --- a type in words -------------------------------------------------------------------------------------

Link = Callable[[type[BaseModel]], str]


def type_words(annotation: Any, metadata: Sequence[Any], link: Link, chosen: bool = False) -> Words:
    """What a value of ``annotation`` (with pydantic's ``metadata``: constraints, validators) may be;
    ``chosen``: a discriminator was declared (a model is then chosen by its ``kind``)."""
    while get_origin(annotation) is Annotated:
        annotation, *more = get_args(annotation)
        metadata = [*metadata, *more]
    chosen = chosen or any(isinstance(item, FieldInfo) and item.discriminator for item in metadata)
    metadata = _flattened(metadata)
    origin = get_origin(annotation)
    if chosen and _is_model(annotation) and kind_of(annotation):
        return _kind_words([annotation], link)
    if origin in (Union, types.UnionType):  # None members are the optional's: its default says `null`
        members = [member for member in get_args(annotation) if member is not type(None)]
        if _is_kind_union([_strip_annotated(member) for member in members]):
            return _kind_words([_strip_annotated(member) for member in members], link)
        if len(members) == 1:
            return type_words(members[0], metadata, link)
        return Words(" or ".join(type_words(member, metadata, link).one for member in members))
    named = [m for m in metadata if isinstance(m, _VALIDATORS)]
    if named:
        return _validator_words(named[-1])
    constraints = {name: getattr(m, name) for m in metadata for name in ("gt", "ge", "lt", "le", "min_length",
                                                                         "max_length") if hasattr(m, name)}
    if origin is Literal:
        values = [str(value) for value in get_args(annotation)]
        return Words(f"exactly `{values[0]}`") if len(values) == 1 else _one_of(values)
    if origin in (list, tuple, set, frozenset):
        return _list_words(type_words(get_args(annotation)[0], (), link), constraints)
    if origin is dict:
        key, value = (type_words(arg, (), link).one for arg in get_args(annotation))
        return Words(f"mapping of keys ({key}) to values ({value})", f"mappings of keys ({key}) to values ({value})")
    if _is_model(annotation):
        return Words(f"mapping ([{annotation.__name__}]({link(annotation)}))",
                     f"mappings ([{annotation.__name__}]({link(annotation)}))")
    if annotation not in _BASE_WORDS:
        raise ValueError(f"no words for the type {annotation!r}: add them to scripts/routes_reference.py")
    return _constrained(_BASE_WORDS[annotation], constraints)


def _kind_words(members: Sequence[type[BaseModel]], link: Link) -> Words:
    kinds = ", ".join(f"[`{kind_of(member)}`]({link(member)})" for member in members)
    return Words(f"mapping, chosen by its `kind`: {kinds}", f"mappings, each chosen by its `kind`: {kinds}")


def _flattened(metadata: Sequence[Any]) -> list[Any]:
    """Constraints and validators, with Field(...) and grouped constraints (StringConstraints) opened up."""
    flat: list[Any] = []
    for item in metadata:
        if isinstance(item, FieldInfo):
            flat += _flattened(item.metadata)
        elif isinstance(item, annotated_types.GroupedMetadata):
            flat += [part for part in item if part is not None]
        else:
            flat.append(item)
    return flat


def _validator_words(validator: Any) -> Words:
    function = inspect.unwrap(validator.func)
    name = f"{function.__module__}.{function.__qualname__}"
    if name not in VALIDATOR_WORDS:
        raise ValueError(f"no words for the validator {name}: add what it accepts to VALIDATOR_WORDS in "
                         "scripts/routes_reference.py")
    return VALIDATOR_WORDS[name]


def _list_words(item: Words, constraints: dict[str, Any]) -> Words:
    text = f"list of {item.many}" if item.many else f"list, each {item.one}"
    least = constraints.get("min_length")
    if least:
        text += f" (at least {'one' if least == 1 else least})"
    return Words(text)


def _constrained(base: Words, constraints: dict[str, Any]) -> Words:
    """``number > 0``, ``whole number from 1 to 64``, ``string of 1 to 200 characters``."""
    least, most = constraints.get("min_length"), constraints.get("max_length")
    if least or most:
        extent = (f" of {least} to {most} characters" if least and most else ", not empty" if least == 1
                  else f" of at least {least} characters" if least else f" of at most {most} characters")
        return Words(base.one + extent, (base.many or base.one) + extent)
    limits = [f"{sign} {_number(constraints[name])}"
              for name, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")) if name in constraints]
    if len(limits) == 2 and {"ge", "le"} <= constraints.keys():
        bounds = f" from {_number(constraints['ge'])} to {_number(constraints['le'])}"
    else:
        bounds = "".join(f" {limit}" if not index else f" and {limit}" for index, limit in enumerate(limits))
    return Words(base.one + bounds, (base.many or base.one) + bounds)


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


# --- values as YAML --------------------------------------------------------------------------------------

def as_yaml(value: Any) -> str:
    """``value`` as one line of YAML (flow style), as it would be written in a route file."""
    text = yaml.safe_dump(_plain(value), default_flow_style=True, allow_unicode=True, sort_keys=False,
                          width=1_000_000).strip()
    return text.removesuffix("\n...").strip()


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_unset=True)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, Path):
        return value.as_posix()
    return value


def default_text(model: type[BaseModel], name: str, info: FieldInfo) -> str:
    """Required, or the default as YAML (installation paths relative to the installation)."""
    if (model, name) in LOADER_DEFAULTS:
        return LOADER_DEFAULTS[(model, name)]
    if info.is_required():
        return "**required**"
    value = info.get_default(call_default_factory=True, validated_data={})
    if value is None:
        return "`null` (not set)"
    if isinstance(value, Path) and value.is_absolute():
        return f"the installation's `{value.relative_to(PROJECT_ROOT).as_posix()}`"
    text = code(as_yaml(value))
    return f"{text} (every key at its default)" if isinstance(value, BaseModel) and _plain(value) == {} else text


def code(text: str) -> str:
    """A Markdown code span around ``text`` (longer fences when it holds backticks)."""
    fence = "``" if "`" in text else "`"
    padding = " " if fence == "``" else ""
    return f"{fence}{padding}{text}{padding}{fence}"


def cell(text: str) -> str:
    """Text for a table cell: one line, pipes escaped, reStructuredText ``literals`` as Markdown ones."""
    return " ".join(text.replace("``", "`").split()).replace("|", "\\|")


def prose(text: str) -> str:
    return inspect.cleandoc(text).replace("``", "`")


# --- rules across keys: what the validators say when they refuse -----------------------------------------

@dataclass(frozen=True)
class Rule:
    key: str  # the key the message is reported at ("" for the whole mapping)
    text: str


def rules(model: type[BaseModel]) -> list[Rule]:
    """The messages of the model's field and model validators, at the keys they are reported at."""
    decorators = model.__pydantic_decorators__
    found: list[Rule] = []
    for decorator in [*decorators.field_validators.values(), *decorators.model_validators.values()]:
        keys = getattr(decorator.info, "fields", ("",))
        function = inspect.unwrap(getattr(decorator.func, "__func__", decorator.func))
        messages = _broken_rules(function)
        if not messages:
            if not function.__doc__:
                raise ValueError(f"{model.__name__}.{function.__name__} has no broken_rule(...) message and no "
                                 "docstring: nothing says what it checks")
            messages = [("", " ".join(function.__doc__.split()))]
        found += [Rule(_joined(key, at), text) for key in keys for at, text in messages]
    return found


def _broken_rules(function: Callable[..., Any]) -> list[tuple[str, str]]:
    """(``at`` as a path below the key, message) of every ``broken_rule(...)`` call in the function."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Name) and node.func.id == "broken_rule" and node.args]
    found = []
    for call in sorted(calls, key=lambda node: (node.lineno, node.col_offset)):
        at = next((keyword.value for keyword in call.keywords if keyword.arg == "at"), None)
        found.append((_at_path(at), _literal(call.args[0])))
    return found


def _literal(node: ast.expr) -> str:
    """The text of a string expression; "…" for what is only known when the rule fires."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_literal(part) if isinstance(part, ast.Constant) else "…" for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _literal(node.left) + _literal(node.right)
    return "…"


def _at_path(node: ast.expr | None) -> str:
    if not isinstance(node, ast.Tuple):
        return ""
    return "".join(f".{part.value}" if isinstance(part, ast.Constant) and isinstance(part.value, str) else "[]"
                   for part in node.elts)


def _joined(key: str, at: str) -> str:
    return (key + at).lstrip(".")


# --- the document ----------------------------------------------------------------------------------------

HEADER = f"""\
# Route file reference

<!-- Generated by scripts/routes_reference.py from the route config models (engine/routes/). Do not edit. -->

**Generated** from the route config models in `engine/routes/`: do not edit this file by hand. After
changing a model, regenerate it (`tests/test_routes_reference.py` fails while it is stale):

```sh
{WRITE_COMMAND}
# or: {PRINT_COMMAND}
```

Every key of a route file (`routes/NAME.yaml`). The guide to routes, with a commented example of the whole
format, environment variables in values, the errors `vitalsstream routes check` prints and route tests, is
[routes.md](routes.md).

- **key**: the YAML key. A key not listed in its section is an error (with a "did you mean").
- **type**: what the value may be. String values may use `${{VAR}}`, `${{VAR:-default}}` and `${{VAR:+word}}`
  ([routes.md](routes.md#environment-variables-in-values)); the result is read as the type the key expects,
  so `port: ${{PORT:-2575}}` is the number 2575.
- **default**: the value when the key is left out, as YAML, or **required**.
- **example**: a value as written in a route file (YAML).
- **Rules across keys** under a table are checked too, and reported with the words shown (`…` stands for
  what the message fills in). Rules across route files (unique route names, unique destination names, one
  listener per address and port, one route per HTTP source kind) are in [routes.md](routes.md#errors).
"""


def render(root: type[BaseModel] = RouteConfig) -> str:
    """The reference document for ``root`` and every model below it."""
    found, unions = sections(root)
    anchors = {section.model: f"#{section.anchor}" for section in found}
    parts = [HEADER, _contents(found), _kinds(unions, anchors)]
    parts += [_section(section, anchors) for section in found]
    return "\n".join(part.rstrip("\n") + "\n" for part in parts)


def _contents(found: list[Section]) -> str:
    lines = ["## Contents", ""]
    lines += [f"- [{section.title}](#{section.anchor})" for section in found]
    return "\n".join(lines) + "\n"


def _kinds(unions: list[KindUnion], anchors: dict[type[BaseModel], str]) -> str:
    lines = ["## Kinds", "", "These keys take a mapping whose `kind` says which model it is.", ""]
    for union in unions:
        lines += [f"`{union.path}`:", "", "| kind | section | what it is |", "|---|---|---|"]
        for member in union.members:
            summary = cell(prose(member.__doc__ or "").split("\n\n")[0])
            lines.append(f"| `{kind_of(member)}` | [{member.__name__}]({anchors[member]}) | {summary} |")
        lines.append("")
    return "\n".join(lines)


def _section(section: Section, anchors: dict[type[BaseModel], str]) -> str:
    model = section.model
    source = Path(inspect.getfile(model)).resolve().relative_to(PROJECT_ROOT).as_posix()
    lines = [f'<a id="{section.anchor}"></a>', "", f"## {section.title}", "",
             f"Model `{model.__name__}` ({source}).", "", prose(model.__doc__ or ""), ""]
    if section.parents:
        lines += ["Part of: " + ", ".join(f"[{parent.__name__}]({anchors[parent]})" for parent in section.parents)
                  + ".", ""]
    link: Link = lambda target: anchors[target]  # noqa: E731
    lines += ["| key | type | default | description | example |", "|---|---|---|---|---|"]
    for name, info in fields(model):
        lines.append(_row(model, name, info, link))
    found = rules(model)
    if found:
        lines += ["", "Rules across keys:", ""]
        lines += [f"- {code(rule.key) + ': ' if rule.key else ''}{cell(rule.text)}" for rule in found]
    return "\n".join(lines) + "\n"


def _row(model: type[BaseModel], name: str, info: FieldInfo, link: Link) -> str:
    if not info.description or not info.examples:
        raise ValueError(f"{model.__name__}.{name} needs a description and an example")
    words = type_words(info.annotation, info.metadata, link, chosen=info.discriminator is not None)
    examples = " or ".join(code(as_yaml(example)) for example in info.examples)
    return (f"| `{name}` | {cell(words.one)} | {cell(default_text(model, name, info))} | "
            f"{cell(info.description)} | {cell(examples)} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate docs/routes-reference.md from the route config models "
                                                 "(printed on standard output unless --write or --check).")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write docs/routes-reference.md")
    mode.add_argument("--check", action="store_true", help="exit with status 1 when docs/routes-reference.md "
                                                           "is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        REFERENCE.write_text(text, encoding="utf-8")
        print(f"wrote {_shown(REFERENCE)}", file=sys.stderr)
        return 0
    if args.check:
        if not REFERENCE.is_file() or REFERENCE.read_text(encoding="utf-8") != text:
            print(f"{_shown(REFERENCE)} is stale: run {WRITE_COMMAND}", file=sys.stderr)
            return 1
        return 0
    sys.stdout.buffer.write(text.encode("utf-8"))
    return 0


def _shown(path: Path) -> str:
    return path.relative_to(PROJECT_ROOT).as_posix() if path.is_relative_to(PROJECT_ROOT) else str(path)


if __name__ == "__main__":
    raise SystemExit(main())
