"""The original VitalsStream REST body -> canonical readings.

``{"device_id", "patient_id", "timestamp", "heart_rate", "spo2", "temperature_c", "resp_rate",
"bp_systolic", "bp_diastolic", "glucose_mmol_l"}``: every value already in its canonical unit (the field
names say which), one observation time for all. The adapter validates the body (types, ranges, which
fields); this mapping only names what it holds.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from transforms.vitals import VITALS, VitalsReading

# body field -> canonical vital
FIELDS = {
    "heart_rate": "heart_rate",
    "spo2": "spo2",
    "temperature_c": "temperature",
    "resp_rate": "resp_rate",
    "bp_systolic": "bp_systolic",
    "bp_diastolic": "bp_diastolic",
    "glucose_mmol_l": "glucose",
}
SOURCE_SYSTEM = "REST"
STATUS = "R"  # sent by a device, not verified by a clinician (OBX-11 R, as monitors send)


def readings_from_body(body: Mapping[str, object], device_id: str, control_id: str) -> list[VitalsReading]:
    """One reading per vital field present (null fields are no readings); ``timestamp`` is aware."""
    observed_at = body["timestamp"]
    assert isinstance(observed_at, datetime) and observed_at.tzinfo is not None
    readings = []
    for name, vital in FIELDS.items():
        value = body.get(name)
        if value is None:
            continue
        assert isinstance(value, int | float)
        unit = VITALS[vital].unit
        readings.append(VitalsReading(
            patient_id=str(body["patient_id"]), device_id=device_id, vital=vital, value=float(value), unit=unit,
            observed_at=observed_at.astimezone(UTC), status=STATUS, source_system=SOURCE_SYSTEM,
            source_code=name, source_value=str(value),
            source_unit=unit, control_id=control_id))
    return readings
