"""Route tests: YAML cases that feed messages through a route and compare ACKs, readings and alerts."""
from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from engine.route_tests import CaseResult, check_route_tests, run_route_tests
from engine.routes import RouteConfigError

ROOT = Path(__file__).resolve().parent.parent
ROUTES = ROOT / "routes"
HL7 = ROOT / "fixtures" / "hl7"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A routes folder with the shipped default route and nothing else."""
    shutil.copy(ROUTES / "default.yaml", tmp_path / "default.yaml")
    return tmp_path


def write_tests(folder: Path, text: str, name: str = "default.test.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n").replace("HL7/", f"{HL7}/"), encoding="utf-8")
    return path


def test_the_shipped_route_tests_pass() -> None:
    results = run_route_tests(ROUTES, env={})
    assert [result.differences for result in results if not result.passed] == []
    assert len(results) >= 5
    assert check_route_tests(ROUTES, env={}) == []


def test_a_failing_case_says_precisely_what_differs(folder: Path) -> None:
    path = write_tests(folder, """
        cases:
          - name: wrong expectations for PCD-01
            message: HL7/pcd01_nibp.hl7
            ack: AE
            readings:
              - {vital: bp_systolic, value: 121}
              - {vital: bp_diastolic, value: 80, observed_at: "2009-08-13T09:57:15+05:00"}
              - {vital: bp_mean}
            alerts:
              - {vital: heart_rate, severity: critical}
          - name: every ACK code, in order
            message: HL7/enhanced_al_al.hl7
            ack: [AA]
          - name: no ACK at all
            message: HL7/enhanced_al_al.hl7
            ack: none
          - name: content error
            message: HL7/bad/nonnumeric_value.hl7
            ack: AA
            readings: [{vital: heart_rate}]
          - name: this one passes
            message: HL7/multi_patient_v24.hl7
            alerts:
              - {vital: resp_rate}
              - {vital: heart_rate}
              - {vital: spo2, severity: warning}
        """)
    results = run_route_tests(folder, env={})
    assert [str(result) for result in results] == [
        f"{path}:2: wrong expectations for PCD-01: FAILED\n"
        "    ack: expected AE, got AA\n"
        "    readings: expected 3, got 2\n"
        "    readings: missing {vital: bp_systolic, value: 121}\n"
        "    readings: missing {vital: bp_mean}\n"
        "    readings: unexpected {vital: bp_systolic, value: 120, observed_at: 2009-08-13T04:57:15Z}\n"
        "    alerts: expected 1, got 0\n"
        "    alerts: missing {vital: heart_rate, severity: critical}",
        f"{path}:11: every ACK code, in order: FAILED\n"
        "    ack: expected [AA], got [CA, AA]",
        f"{path}:14: no ACK at all: FAILED\n"
        "    ack: expected none, got [CA, AA]",
        f"{path}:17: content error: FAILED\n"
        "    ack: expected AA, got AE\n"
        "    readings: expected 1, got 0\n"
        "    readings: missing {vital: heart_rate}\n"
        "    (the channel said: 102 Data type error at OBX[1]-5: OBX-5 value 'seventy' is not numeric)",
        f"{path}:21: this one passes: passed",
    ]
    assert results[-1] == CaseResult(path, 21, "this one passes", True, [])


def test_final_ack_only_compares_the_last_code(folder: Path) -> None:
    write_tests(folder, """
        cases:
          - {name: final, message: HL7/enhanced_al_al.hl7, ack: AA}
          - {name: wrong final, message: HL7/enhanced_al_al.hl7, ack: ca}
        """)
    assert [(r.passed, r.differences) for r in run_route_tests(folder, env={})] == [
        (True, []), (False, ["ack: expected CA, got AA (all: [CA, AA])"])]


def test_inline_hl7_and_several_messages_with_cumulative_expectations(folder: Path) -> None:
    write_tests(folder, """
        cases:
          - name: inline HL7
            hl7: |
              MSH|^~\\&|BEDSIDE|ICU|||20240301080000||ORU^R01|T-1|P|2.5
              PID|||P-7
              OBR|1||||||20240301080000
              OBX|1|NM|8867-4^HR^LN||80|/min|||||F
              OBX|2|NM|59408-5^SpO2^LN||98|%|||||F
            ack: AA
            readings:
              - {vital: heart_rate, value: 80, patient_id: P-7, observed_at: 2024-03-01T08:00:00Z}
              - {vital: spo2, value: 98}
            alerts: []
          - name: two messages
            messages: [HL7/pcd01_nibp.hl7, HL7/multi_patient_v24.hl7]
            ack: AA
            readings:
              - {patient_id: "789567"}
              - {patient_id: "789567"}
              - {patient_id: W3-1}
              - {patient_id: W3-1}
              - {patient_id: W3-2}
              - {patient_id: W3-2}
        """)
    assert [(r.case, r.passed, r.differences) for r in run_route_tests(folder, env={})] == [
        ("inline HL7", True, []), ("two messages", True, [])]


def test_the_route_defaults_to_the_file_beside_the_test_and_relative_paths_start_at_the_test(
        folder: Path) -> None:
    shutil.copy(HL7 / "pcd01_nibp.hl7", folder / "nibp.hl7")
    write_tests(folder, "cases: [{name: nibp, message: nibp.hl7, ack: AA}]\n")
    assert [r.passed for r in run_route_tests(folder, env={})] == [True]


def test_the_route_under_test_is_interpolated_and_filtered_like_the_engine_would(folder: Path) -> None:
    (folder / "icu.yaml").write_text("source: {kind: mllp, port: 2590}\n"
                                     "accept: {sending_facilities: ['${ICU_FACILITY}']}\n")
    write_tests(folder, """
        cases:
          - {name: other facility, message: HL7/pcd01_nibp.hl7, ack: AR, readings: []}
        """, name="icu.test.yaml")
    assert [(r.passed, r.differences) for r in run_route_tests(folder, env={"ICU_FACILITY": "ICU"})] == [(True, [])]


def test_broken_test_files_report_every_error_at_its_place(folder: Path) -> None:
    write_tests(folder, """
        route: icu.yaml
        cases:
          - name: typo
            mesage: a.hl7
            ack: OK
            readings:
              - {vitl: bp_systolic, value: high}
            alerts: [{severity: high}]
          - name: two inputs
            message: HL7/pcd01_nibp.hl7
            hl7: "MSH|^~\\\\&|A"
          - name: no file
            messages: [missing.hl7]
            ack: [AA, XX]
        """)
    write_tests(folder, "cases: []\n", name="empty.test.yaml")
    write_tests(folder, "cases:\n  - name: [\n", name="syntax.test.yaml")
    write_tests(folder, "cases:\n  - {name: a, message: HL7/pcd01_nibp.hl7}\n  - {name: a, hl7: MSH}\n",
                name="twice.test.yaml")
    expected = [
        "default.test.yaml:1:8: route: no such file: {folder}/icu.yaml",
        "default.test.yaml:4:5: cases[0].mesage: unknown key 'mesage' - did you mean 'message'?",
        "default.test.yaml:5:10: cases[0].ack: 'OK' is not an ACK code (one of: AA, AE, AR, CA, CE, CR)",
        "default.test.yaml:7:10: cases[0].readings[0].vitl: unknown key 'vitl' - did you mean 'vital'?",
        "default.test.yaml:7:36: cases[0].readings[0].value: expected a number (got 'high')",
        "default.test.yaml:8:25: cases[0].alerts[0].severity: must be 'warning' or 'critical' (got 'high')",
        "default.test.yaml:9:5: cases[1]: give exactly one of 'message', 'messages' or 'hl7' (found message, hl7)",
        "default.test.yaml:13:16: cases[2].messages[0]: no such file: {folder}/missing.hl7",
        "default.test.yaml:14:10: cases[2].ack: 'XX' is not an ACK code (one of: AA, AE, AR, CA, CE, CR)",
        "empty.test.yaml:1:8: cases: must not be empty",
        "syntax.test.yaml:3:1: YAML syntax: while parsing a flow node expected the node content, but found "
        "'<stream end>'",
        "twice.test.yaml:3:12: cases[1].name: another case is already named 'a'",
    ]
    assert [str(error).replace(f"{folder}/", "", 1) for error in check_route_tests(folder, env={})] == [
        line.replace("{folder}", str(folder)) for line in expected]
    with pytest.raises(RouteConfigError) as raised:
        run_route_tests(folder, env={})
    assert len(raised.value.errors) == len(expected)


def test_a_broken_route_under_test_is_reported_in_the_route_file(folder: Path) -> None:
    (folder / "icu.yaml").write_text("source: {kind: mllp, port: '${ICU_PORT}'}\n")
    write_tests(folder, "cases: [{name: x, message: HL7/pcd01_nibp.hl7}]\n", name="icu.test.yaml")
    assert [str(error).replace(f"{folder}/", "") for error in check_route_tests(folder, env={})] == [
        "icu.yaml:1:28: source.port: environment variable ICU_PORT is not set (write ${ICU_PORT:-default} to "
        "give a default)"]


def test_a_missing_default_route_is_reported_at_the_top_of_the_test(tmp_path: Path) -> None:
    write_tests(tmp_path, "cases: [{name: x, hl7: MSH}]\n", name="ward.test.yaml")
    assert [str(error).replace(f"{tmp_path}/", "", 1) for error in check_route_tests(tmp_path, env={})] == [
        f"ward.test.yaml:1:1: route: no such file: {tmp_path}/ward.yaml"]
