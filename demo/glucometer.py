"""ORU^R01 of a simulated point-of-care glucometer: HL7 v2.3, glucose in mg/dL.

v2.3 has no OBX-18, so the meter names itself in MSH-3 (the engine falls back to MSH-3.1 for the device
id). The unit is written ``mg/dl`` as many meters do (the engine matches unit texts ignoring case) and is
converted to mmol/L on the way in. Above its measuring range (600 mg/dL) the meter reports ``>^600``.
Original acknowledgement mode (MSH-15/16 empty): one AA.
"""
from __future__ import annotations

from datetime import datetime

from demo.hl7 import flag, hl7_time, message, segment
from demo.scenarios import Patient

MG_PER_DL_PER_MMOL_PER_L = 18.016
MEASURING_RANGE_MG_DL = (20, 600)
REFERENCE_MG_DL = (70, 110)


def mg_dl(mmol_l: float) -> int:
    return round(mmol_l * MG_PER_DL_PER_MMOL_PER_L)


def glucometer(patient: Patient, device_id: str, glucose_mmol_l: float, now: datetime, control_id: str) -> bytes:
    at = hl7_time(now, offset=False)
    value = mg_dl(glucose_mmol_l)
    low, high = MEASURING_RANGE_MG_DL
    if value > high:
        value_type, shown = "SN", f">^{high}"
    elif value < low:
        value_type, shown = "SN", f"<^{low}"
    else:
        value_type, shown = "NM", str(value)
    return message([
        f"MSH|^~\\&|{device_id}|{patient.ward}||HOSP|{at}||ORU^R01|{control_id}|P|2.3",
        segment("PID", {3: f"{patient.patient_id}^^^HOSP^MR", 5: f"{patient.family}^{patient.given}"}),
        segment("OBR", {1: "1", 4: "GLU^Glucose POC^L", 7: at, 27: f"^^^{at}^^R"}),  # OBR-27: when, routine
        segment("OBX", {1: "1", 2: value_type, 3: "2345-7^Glucose^LN", 5: shown, 6: "mg/dl",
                        7: "-".join(map(str, REFERENCE_MG_DL)), 8: flag(value, *REFERENCE_MG_DL), 11: "F",
                        14: at}),
    ])
