"""transforms/soap_vitals.py: SOAP readings -> canonical readings, units converted, problems in plain words."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from transforms.soap_vitals import SoapInputError, readings_from_soap

GOOD = {"patient_id": "P1", "device_id": "D1", "vital": "glucose", "value": "90", "unit": "mg/dL",
        "observed_at": "2024-03-05T11:10:00+01:00"}


def test_convertible_units_are_stored_in_the_canonical_unit_with_provenance() -> None:
    [reading] = readings_from_soap([GOOD], "k1")
    assert (reading.vital, reading.value, reading.unit) == ("glucose", 5.0, "mmol/L")
    assert (reading.source_value, reading.source_unit, reading.control_id) == ("90", "mg/dL", "k1")
    assert reading.observed_at == datetime(2024, 3, 5, 10, 10, tzinfo=UTC)


def test_unit_may_be_left_out_only_where_the_vital_has_one_unit() -> None:
    assert readings_from_soap([{**GOOD, "vital": "spo2", "unit": None, "value": "97"}], "k")[0].unit == "%"
    with pytest.raises(SoapInputError, match="unit is missing"):
        readings_from_soap([{**GOOD, "unit": ""}], "k")


def test_naive_times_are_utc_and_every_problem_is_named() -> None:
    reading = readings_from_soap([{**GOOD, "observed_at": "2024-03-05T10:10:00"}], "k")[0]
    assert reading.observed_at.tzinfo is UTC and reading.observed_at.hour == 10
    with pytest.raises(SoapInputError) as error:
        readings_from_soap([GOOD, {"vital": "heart_rate", "value": "nan", "device_id": "D" * 201}], "k")
    assert error.value.problems == [
        "reading 2: patient id is missing", "reading 2: device id is longer than 200 characters",
        "reading 2: value is not a finite number", "reading 2: observed time is missing"]


def test_no_readings_is_an_error() -> None:
    with pytest.raises(SoapInputError, match="no reading given"):
        readings_from_soap([], "k")
