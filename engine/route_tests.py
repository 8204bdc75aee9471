"""Route tests: feed HL7 messages through a route into a fresh database and compare what happened.

``NAME.test.yaml`` beside ``NAME.yaml`` holds the cases (format: engine/routes/cases.py, docs/routes.md).
Each case runs on its own empty SQLite database in a temporary folder, through the real channel
(``Channel.dispatch``), so a test exercises the route exactly as the engine runs it, without a socket.

- ``check_route_tests(directory, env=None) -> list[ConfigError]``: problems in the test files and the
  routes they name, all at once.
- ``run_route_tests(directory, env=None) -> list[CaseResult]``: raises RouteConfigError when the files
  do not check clean, else runs every case.
"""
from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from adapters.sql_store import SqlStore
from adapters.sql_tables import alerts, device_readings, messages
from engine.channel import Channel, Receipt, Route
from engine.migrations import upgrade
from engine.routes.cases import AckExpectation, RouteTestCase, RouteTestFile
from engine.routes.errors import ConfigError, RouteConfigError
from engine.routes.loading import ROUTE_SUFFIX, TEST_SUFFIX, read_route
from engine.routes.positions import read_document
from engine.routes.validation import validate

_SHOWN_BY_DEFAULT = ("vital", "value", "unit", "patient_id")


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one case; ``differences`` says in words what did not match (empty when passed)."""

    file: Path
    line: int
    case: str
    passed: bool
    differences: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        head = f"{self.file}:{self.line}: {self.case}: {'passed' if self.passed else 'FAILED'}"
        return "\n".join([head, *(f"    {difference}" for difference in self.differences)])


@dataclass(frozen=True)
class _Suite:
    file: Path
    route: Route
    cases: list[RouteTestCase]
    lines: list[int]


def route_test_files(directory: Path) -> list[Path]:
    """The route test files of a folder, by name."""
    return sorted(directory.glob(f"*{TEST_SUFFIX}"))


def check_route_tests(directory: Path, env: Mapping[str, str] | None = None) -> list[ConfigError]:
    """Every problem in the test files of ``directory`` and in the routes they test."""
    return _suites(directory, env)[1]


def run_route_tests(directory: Path, env: Mapping[str, str] | None = None) -> list[CaseResult]:
    """Run every case of every test file in ``directory``; RouteConfigError if the files have problems."""
    suites, errors = _suites(directory, env)
    if errors:
        raise RouteConfigError(errors)
    return [run_case(suite.file, line, case, suite.route)
            for suite in suites for case, line in zip(suite.cases, suite.lines, strict=True)]


def _suites(directory: Path, env: Mapping[str, str] | None) -> tuple[list[_Suite], list[ConfigError]]:
    env = os.environ if env is None else env
    suites, errors = [], set()
    for path in route_test_files(directory):
        suite, found = _read_suite(path, env)
        errors.update(found)
        if suite is not None:
            suites.append(suite)
    return suites, sorted(errors)


def _read_suite(path: Path, env: Mapping[str, str]) -> tuple[_Suite | None, list[ConfigError]]:
    document = read_document(path, env)
    tests = validate(document, RouteTestFile, {"base": path.parent}) if document.parsed else None
    if tests is None or document.errors:
        return None, document.errors
    route_file = tests.route or path.with_name(path.name.removesuffix(TEST_SUFFIX) + ROUTE_SUFFIX)
    if not route_file.is_file():
        return None, [document.error(document.value_at(("route",)), ("route",), f"no such file: {route_file}")]
    loaded, errors = read_route(route_file, env)
    if loaded is None:
        return None, errors
    lines = [document.value_at(("cases", index)).line for index in range(len(tests.cases))]
    return _Suite(path, loaded.config.to_route(), tests.cases, lines), []


def run_case(file: Path, line: int, case: RouteTestCase, route: Route) -> CaseResult:
    """Send the case's messages through ``route`` into a new database and compare the outcome."""
    try:
        receipts, readings, raised = _run(case, route)
    except Exception as error:  # a broken case must not stop the others
        return CaseResult(file, line, case.name, False, [f"error: {type(error).__name__}: {error}"])
    differences = _differences(case, receipts[-1], readings, raised)
    if differences and receipts[-1].error:
        differences.append(f"(the channel said: {receipts[-1].error})")
    return CaseResult(file, line, case.name, not differences, differences)


def _run(case: RouteTestCase, route: Route) -> tuple[list[Receipt], list[dict[str, Any]], list[dict[str, Any]]]:
    """The case's messages dispatched on a new SQLite database: the receipts, stored readings and alerts."""
    with tempfile.TemporaryDirectory(prefix="vitals-route-test-") as folder:
        store = SqlStore.from_url(f"sqlite:///{Path(folder) / 'route-test.db'}")
        try:
            upgrade(store.engine)
            channel = Channel(store)
            receipts = [channel.dispatch(payload, route, peer="route-test") for payload in case.payloads()]
            return receipts, _stored_readings(store), _stored_alerts(store)
        finally:
            store.close()


def _stored_readings(store: SqlStore) -> list[dict[str, Any]]:
    query = (select(*(c for c in device_readings.c if c.name not in ("id", "message_id", "created_at")),
                    messages.c.control_id)
             .join(messages, messages.c.id == device_readings.c.message_id).order_by(device_readings.c.id))
    with store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def _stored_alerts(store: SqlStore) -> list[dict[str, Any]]:
    query = select(alerts.c.vital, alerts.c.severity, alerts.c.kind, alerts.c.patient_id, alerts.c.device_id,
                   alerts.c.state, alerts.c.value).order_by(alerts.c.id)
    with store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def _differences(case: RouteTestCase, last: Receipt, readings: list[dict[str, Any]],
                 raised: list[dict[str, Any]]) -> list[str]:
    differences = []
    if case.ack is not None:
        differences += _ack_differences(case.ack, last.ack_codes)
    if case.readings is not None:
        expected = [reading.model_dump(exclude_none=True) for reading in case.readings]
        differences += _row_differences("readings", expected, readings)
    if case.alerts is not None:
        expected = [alert.model_dump(exclude_none=True) for alert in case.alerts]
        differences += _row_differences("alerts", expected, raised)
    return differences


def _ack_differences(expected: AckExpectation, codes: list[str]) -> list[str]:
    got = AckExpectation(tuple(codes), False)
    if not expected.final_only:
        return [] if expected.codes == got.codes else [f"ack: expected {expected}, got {got}"]
    if codes and codes[-1] == expected.codes[0]:
        return []
    final = f"{codes[-1]} (all: {got})" if len(codes) > 1 else codes[0] if codes else "none"
    return [f"ack: expected {expected}, got {final}"]


def _row_differences(what: str, expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[str]:
    """Pair each expectation with a distinct row; report the count, what is missing, what is extra."""
    pairs = _matching(expected, actual)
    differences = [f"{what}: expected {len(expected)}, got {len(actual)}"] if len(expected) != len(actual) else []
    shown = list(dict.fromkeys(key for row in expected for key in row)) or list(_SHOWN_BY_DEFAULT)
    differences += [f"{what}: missing {_shown(row, row)}" for i, row in enumerate(expected) if i not in pairs]
    used = set(pairs.values())
    differences += [f"{what}: unexpected {_shown(row, shown)}" for j, row in enumerate(actual) if j not in used]
    return differences


def _matching(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> dict[int, int]:
    """Largest pairing of expectations with rows that satisfy them (augmenting paths, both lists small)."""
    owner: dict[int, int] = {}  # actual index -> expected index

    def place(i: int, seen: set[int]) -> bool:
        for j, row in enumerate(actual):
            if j not in seen and _satisfies(row, expected[i]):
                seen.add(j)
                if j not in owner or place(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    for i in range(len(expected)):
        place(i, set())
    return {i: j for j, i in owner.items()}


def _satisfies(row: dict[str, Any], expected: dict[str, Any]) -> bool:
    return all(key in row and _same(value, row[key]) for key, value in expected.items())


def _same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, float) and isinstance(actual, int | float):
        return math.isclose(expected, actual, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(expected, datetime) and isinstance(actual, datetime):
        return _utc_naive(expected) == _utc_naive(actual)
    return bool(expected == actual)


def _utc_naive(moment: datetime) -> datetime:
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def _shown(row: dict[str, Any], keys: Any) -> str:
    """A row as a YAML flow mapping of ``keys``, the way a test would write it."""
    return "{" + ", ".join(f"{key}: {_scalar(row[key])}" for key in keys if key in row) + "}"


def _scalar(value: Any) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, datetime):
        return _utc_naive(value).isoformat() + "Z"
    return str(value)
