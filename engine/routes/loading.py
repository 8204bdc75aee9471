"""Loading and checking ``routes/*.yaml``: every file, every error, then the rules across files.

``check_routes`` lists problems; ``load_routes`` returns the validated routes or raises RouteConfigError
with all of them. Files named ``*.test.yaml`` are route tests (engine/route_tests.py), not routes.
Across files: route names are unique, outbox destination names are unique (each is one queue), and no
two routes listen on the same address and port.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from engine.routes.config import RouteConfig
from engine.routes.errors import ConfigError, RouteConfigError
from engine.routes.positions import Document, read_document
from engine.routes.source import HTTP_SOURCE_KINDS, WILDCARD_HOSTS, MllpSource
from engine.routes.validation import validate

ROUTE_SUFFIX = ".yaml"
TEST_SUFFIX = ".test.yaml"


@dataclass(frozen=True)
class LoadedRoute:
    """A valid route and the document it was read from (for positions in cross-file errors)."""

    config: RouteConfig
    document: Document


def route_files(directory: Path) -> list[Path]:
    """The route files of a folder, by name: ``*.yaml`` without ``*.test.yaml``."""
    return sorted(path for path in directory.glob(f"*{ROUTE_SUFFIX}") if not path.name.endswith(TEST_SUFFIX))


def read_route(path: Path, env: Mapping[str, str] | None = None) -> tuple[LoadedRoute | None, list[ConfigError]]:
    """One route file validated; the name defaults to the file name without ``.yaml``."""
    document = read_document(path, os.environ if env is None else env)
    if isinstance(document.data, dict) and "name" not in document.data:
        document.data["name"] = path.name.removesuffix(ROUTE_SUFFIX)
    config = validate(document, RouteConfig, {"base": path.parent}) if document.parsed else None
    if config is None or document.errors:
        return None, sorted(document.errors)
    return LoadedRoute(config, document), []


def load_route_file(path: Path, env: Mapping[str, str] | None = None) -> RouteConfig:
    """One route file as a RouteConfig; raises RouteConfigError listing its problems."""
    loaded, errors = read_route(path, env)
    if loaded is None:
        raise RouteConfigError(errors)
    return loaded.config


def check_routes(directory: Path, env: Mapping[str, str] | None = None) -> list[ConfigError]:
    """Every problem of every route file in ``directory``, and of the routes together; empty when all is well."""
    return _read_all(directory, env)[1]


def load_routes(directory: Path, env: Mapping[str, str] | None = None) -> list[RouteConfig]:
    """The routes of ``directory`` in file-name order; raises RouteConfigError with every problem found."""
    routes, errors = _read_all(directory, env)
    if errors:
        raise RouteConfigError(errors)
    return [loaded.config for loaded in routes]


def _read_all(directory: Path, env: Mapping[str, str] | None) -> tuple[list[LoadedRoute], list[ConfigError]]:
    if not directory.is_dir():
        return [], [ConfigError(directory, 0, 0, "", "no such folder")]
    files = route_files(directory)
    if not files:
        return [], [ConfigError(directory, 0, 0, "", f"no route files (*{ROUTE_SUFFIX})")]
    routes, errors = [], []
    for path in files:
        loaded, found = read_route(path, env)
        errors += found
        if loaded is not None:
            routes.append(loaded)
    errors += [*_duplicate_names(routes), *_duplicate_destinations(routes), *_shared_ports(routes),
               *_second_http_sources(routes)]
    return routes, sorted(errors)


def _duplicate_names(routes: list[LoadedRoute]) -> Iterator[ConfigError]:
    first: dict[str, LoadedRoute] = {}
    for route in routes:
        name = route.config.name
        if name in first:
            earlier = first[name].document
            named = "" if ("name",) in route.document.values else " (named after its file; set 'name:')"
            yield route.document.error(route.document.value_at(("name",)), ("name",),
                                       f"route name '{name}'{named} is already used by {_where(earlier, ('name',))}")
        else:
            first[name] = route


def _duplicate_destinations(routes: list[LoadedRoute]) -> Iterator[ConfigError]:
    """A destination name is its outbox queue: two routes sharing one would mix their configurations."""
    first: dict[str, tuple[LoadedRoute, tuple[str | int, ...]]] = {}
    for route in routes:
        for index, destination in enumerate(route.config.destinations):
            name = getattr(destination, "name", None)
            if name is None:
                continue
            path = ("destinations", index, "name")
            if name in first:
                earlier, earlier_path = first[name]
                yield route.document.error(route.document.value_at(path), path,
                                           f"destination name '{name}' is already used by route "
                                           f"'{earlier.config.name}' ({_where(earlier.document, earlier_path)})")
            else:
                first[name] = (route, path)


def _shared_ports(routes: list[LoadedRoute]) -> Iterator[ConfigError]:
    listeners = [route for route in routes if isinstance(route.config.source, MllpSource)]
    for index, route in enumerate(listeners):
        source = route.config.source
        assert isinstance(source, MllpSource)
        if source.port == 0:
            continue
        for earlier in listeners[:index]:
            other = earlier.config.source
            assert isinstance(other, MllpSource)
            if other.port == source.port and _overlap(source.host, other.host):
                path = ("source", "port")
                yield route.document.error(route.document.value_at(path), path,
                                           f"{source.host}:{source.port} is already used by route "
                                           f"'{earlier.config.name}' ({_where(earlier.document, path)})")
                break


def _second_http_sources(routes: list[LoadedRoute]) -> Iterator[ConfigError]:
    """REST and SOAP submissions arrive at one endpoint each: one route per kind takes them."""
    first: dict[str, LoadedRoute] = {}
    for route in routes:
        kind = route.config.source.kind
        if kind not in HTTP_SOURCE_KINDS:
            continue
        if kind in first:
            path = ("source", "kind")
            yield route.document.error(route.document.value_at(path), path,
                                       f"route '{first[kind].config.name}' already takes {kind} submissions "
                                       f"({_where(first[kind].document, path)})")
        else:
            first[kind] = route


def _overlap(host: str, other: str) -> bool:
    """Two listen addresses conflict when equal or when either is a wildcard (every interface)."""
    return host == other or host in WILDCARD_HOSTS or other in WILDCARD_HOSTS


def _where(document: Document, path: tuple[str | int, ...]) -> str:
    position = document.value_at(path)
    return f"{document.file}:{position.line}:{position.column}"
