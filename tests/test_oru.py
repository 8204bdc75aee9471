"""Every fixture maps to exactly the readings beside it; every bad fixture to its precise problems."""
import json
from datetime import UTC
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.messages import FIXTURES, oru
from transforms.codes import DEFAULT_CODES, IDENTIFIERS_REMEMBERED
from transforms.errors import MessageProblems
from transforms.hl7.charset import decode
from transforms.hl7.header import read_header
from transforms.hl7.parser import parse
from transforms.oru import OruMapping, transform

GOOD = sorted(FIXTURES.glob("*.hl7"))
BAD = json.loads((FIXTURES / "bad" / "expected.json").read_text())
BAD.pop("_about")


DEFAULT_MAPPING = OruMapping()


def readings_of(raw: bytes, mapping: OruMapping = DEFAULT_MAPPING) -> list[dict]:
    message = parse(decode(raw))
    return [r.as_json() for r in transform(message, read_header(message), mapping)]


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_fixture_maps_to_its_expected_readings(path: Path) -> None:
    expected = [json.loads(line) for line in path.with_suffix(".expected.jsonl").read_text().splitlines()]
    assert readings_of(path.read_bytes()) == expected


@pytest.mark.parametrize("name", sorted(BAD), ids=str)
def test_bad_fixture_gives_precise_problems(name: str) -> None:
    with pytest.raises(MessageProblems) as caught:
        readings_of((FIXTURES / "bad" / name).read_bytes())
    assert [[p.code, str(p.location)] for p in caught.value.problems] == BAD[name]["problems"]


def test_every_problem_in_a_message_is_reported() -> None:
    raw = (b"MSH|^~\\&|X|Y|||20240101||ORU^R01|C|P|2.5\rPID|||P1\r"
           b"OBX|1|NM|8867-4^HR^LN||fast|/min|||||F\r"
           b"OBX|2|NM|8310-5^T^LN||37|parsecs|||||F\r"
           b"OBX|3|NM|2708-6^SpO2^LN||97|%|||||Q\r")
    with pytest.raises(MessageProblems) as caught:
        readings_of(raw)
    assert [(p.code, str(p.location)) for p in caught.value.problems] == [
        (102, "OBX[1]-5"), (103, "OBX[2]-6"), (103, "OBX[3]-11")]


def test_route_time_zone_applies_to_time_stamps_without_offset() -> None:
    raw = oru("TZ1", "P1", "20240701120000", [("heart_rate", 70)])
    assert readings_of(raw)[0]["observed_at"] == "2024-07-01T12:00:00Z"
    berlin = OruMapping(zone=ZoneInfo("Europe/Berlin"))
    assert readings_of(raw, berlin)[0]["observed_at"] == "2024-07-01T10:00:00Z"


def test_observation_time_falls_back_from_obx14_to_obr7_to_msh7() -> None:
    raw = (b"MSH|^~\\&|X|Y|||20240101100000||ORU^R01|C|P|2.5\rPID|||P1\r"
           b"OBX|1|NM|8867-4^HR^LN||70|/min|||||F|||20240101090000\r"
           b"OBX|2|NM|8867-4^HR^LN||71|/min|||||F\r"
           b"OBR|1||||||20240101080000\r"
           b"OBX|3|NM|8867-4^HR^LN||72|/min|||||F\r")
    assert [r["observed_at"] for r in readings_of(raw)] == [
        "2024-01-01T09:00:00Z", "2024-01-01T10:00:00Z", "2024-01-01T08:00:00Z"]


def test_device_is_obx18_else_msh3() -> None:
    raw = oru("D1", "P1", "20240101100000", [("heart_rate", 70)], device="EUI64^EUI-64", sender="MON^X")
    assert readings_of(raw)[0]["device_id"] == "EUI64"
    raw = oru("D2", "P1", "20240101100000", [("heart_rate", 70)], sender="MON^X")
    assert readings_of(raw)[0]["device_id"] == "MON"


def test_a_route_extends_the_code_map_with_vendor_codes() -> None:
    raw = (FIXTURES / "vendor_philips_mdil.hl7").read_bytes()
    assert readings_of(raw) == []
    codes = DEFAULT_CODES.extended(observations=[("", "0002-4182", "heart_rate"), ("", "0002-4bb8", "spo2")],
                                   units=[("Schläge/min", "/min")])
    readings = readings_of(raw, OruMapping(codes=codes, zone=UTC))
    assert [(r["vital"], r["value"], r["source_code"]) for r in readings] == [
        ("heart_rate", 77.0, "0002-4182"), ("spo2", 98.0, "0002-4bb8")]
    assert codes.ucum("schläge/min") == "/min"
    assert DEFAULT_CODES.vital("", "0002-4182") is None  # the default map is untouched


@pytest.mark.parametrize("obx5, obx2, value, source", [
    ("72", "NM", 72.0, "72"), (" 72 ", "NM", 72.0, "72"), ("+72.50", "NM", 72.5, "+72.50"),
    ("^72", "SN", 72.0, "72"), ("=^72", "SN", 72.0, "72"), (">^150", "SN", 150.0, ">150"),
    ("72", "", 72.0, "72"), ("72", "ST", 72.0, "72"),
])
def test_numeric_and_structured_numeric_values(obx5: str, obx2: str, value: float, source: str) -> None:
    raw = (f"MSH|^~\\&|X|Y|||20240101||ORU^R01|C|P|2.5\rPID|||P1\r"
           f"OBX|1|{obx2}|8867-4^HR^LN||{obx5}|/min|||||F\r").encode()
    [reading] = readings_of(raw)
    assert (reading["value"], reading["source_value"]) == (value, source)


@pytest.mark.parametrize("obx5, obx2", [("1e3", "NM"), ("nan", "NM"), ("72", "CWE"), ("<>^5", "SN"),
                                        ("^1^:^2", "SN"), ("37,5", "NM")])
def test_values_that_are_not_one_number_are_data_type_errors(obx5: str, obx2: str) -> None:
    raw = (f"MSH|^~\\&|X|Y|||20240101||ORU^R01|C|P|2.5\rPID|||P1\r"
           f"OBX|1|{obx2}|8867-4^HR^LN||{obx5}|/min|||||F\r").encode()
    with pytest.raises(MessageProblems) as caught:
        readings_of(raw)
    assert caught.value.problems[0].code == 102


@pytest.mark.parametrize("unit, value, expected", [
    ("[degF]", 100.4, 38.0), ("degF", 98.6, 37.0), ("°F", 212, 100.0), ("Cel", 37.2, 37.2), ("C", 37.2, 37.2),
    ("266560^MDC_DIM_FAHR^MDC", 98.6, 37.0), ("268192^MDC_DIM_DEGC^MDC", 36.5, 36.5),
])
def test_temperature_units_convert_to_celsius(unit: str, value: float, expected: float) -> None:
    raw = (f"MSH|^~\\&|X|Y|||20240101||ORU^R01|C|P|2.5\rPID|||P1\r"
           f"OBX|1|NM|8310-5^T^LN||{value}|{unit}|||||F\r").encode()
    assert readings_of(raw)[0]["value"] == expected
    assert readings_of(raw)[0]["unit"] == "Cel"


def test_every_code_in_the_table_maps_to_its_vital() -> None:
    """The LOINC and MDC table of ../shared/HL7-VITALS.md, row by row."""
    table = {
        "heart_rate": ["LN 8867-4", "MDC 147842"],
        "pulse_rate": ["MDC 149514", "MDC 149530", "MDC 149546", "MDC 149522"],
        "spo2": ["LN 59408-5", "LN 2708-6", "MDC 150456", "MDC 150324"],
        "temperature": ["LN 8310-5"] + [f"MDC {c}" for c in (150344, 150364, 150368, 150388, 150392, 188420,
                                                            188424, 188428, 188452, 188456)],
        "resp_rate": ["LN 9279-1"] + [f"MDC {c}" for c in (151562, 151570, 151578, 151594, 151658)],
        "bp_systolic": ["LN 8480-6"] + [f"MDC {c}" for c in (150021, 150301, 150033, 150037, 150017)],
        "bp_diastolic": ["LN 8462-4"] + [f"MDC {c}" for c in (150022, 150302, 150034, 150038, 150018)],
        "bp_mean": ["LN 8478-0"] + [f"MDC {c}" for c in (150023, 150303, 150035, 150039, 150019)],
        "glucose": [f"LN {c}" for c in ("2339-0", "41653-7", "2345-7", "15074-8", "14743-9", "14749-6")]
        + [f"MDC {c}" for c in (160020, 160184, 160188, 160192, 160196, 160200, 160204, 160212)],
    }
    for vital, codes in table.items():
        for entry in codes:
            system, code = entry.split()
            assert DEFAULT_CODES.vital(system, code) == vital, entry
    assert DEFAULT_CODES.vital("LOINC", "8867-4") == "heart_rate"


@pytest.mark.parametrize("unit, ucum", [
    ("262688", "%"), ("264864", "/min"), ("264928", "/min"), ("266016", "mm[Hg]"), ("265987", "kPa"),
    ("268192", "Cel"), ("266560", "[degF]"), ("264274", "mg/dL"), ("266866", "mmol/L"),
    ("bpm", "/min"), ("BPM", "/min"), ("mmHg", "mm[Hg]"), ("MMHG", "mm[Hg]"), ("degF", "[degF]"),
    ("mg/dl", "mg/dL"), ("mmol/l", "mmol/L"),
])
def test_unit_table(unit: str, ucum: str) -> None:
    assert DEFAULT_CODES.ucum(unit) == ucum


def test_missing_unit_is_allowed_only_where_one_unit_is_in_use() -> None:
    raw = b"MSH|^~\\&|X|Y|||20240101||ORU^R01|C|P|2.5\rPID|||P1\rOBX|1|NM|59408-5^SpO2^LN||95||||||R\r"
    assert readings_of(raw)[0]["unit"] == "%"


def test_rows_without_reading_are_skipped() -> None:
    raw = (b"MSH|^~\\&|X|Y|||20240101||ORU^R01|C|P|2.5\rPID|||P1\r"
           b"OBX|1|NM|8867-4^HR^LN|||/min|||||F\r"
           b"OBX|2|NM|8867-4^HR^LN||70|/min|||||X\r"
           b"OBX|3|NM|8867-4^HR^LN||70|/min|||||W\r"
           b"OBX|4|NM|8867-4^HR^LN||70|/min|||||D\r"
           b"OBX|5|ST|12345-6^Comment^LN||free text|||||F\r")
    assert readings_of(raw) == []


def test_an_identifier_is_worked_out_once_and_the_memory_of_them_is_bounded() -> None:
    codes = DEFAULT_CODES.extended()  # a map of its own: nothing remembered yet
    first = codes.identify(["8867-4", "Heart rate", "LN"])
    assert first == ("heart_rate", "LN", "8867-4")
    assert codes.identify(["8867-4", "Heart rate", "LN"]) is first
    assert codes.identify(["", "", "", "150456", "MDC_PULS_OXIM_SAT_O2", "MDC"]) == ("spo2", "MDC", "150456")
    assert codes.identify(["X-1", "", "LOCAL"]) == (None, "LOCAL", "X-1")
    for number in range(IDENTIFIERS_REMEMBERED + 10):  # a sender inventing codes
        assert codes.identify([f"X-{number}", "", "LOCAL"])[0] is None
    assert len(codes._identified) <= IDENTIFIERS_REMEMBERED
    assert codes.identify(["8867-4", "Heart rate", "LN"]) == first
