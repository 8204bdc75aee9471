"""ORU^R01 messages of three simulated bedside monitor vendors, each with the quirks of its kind.

- Vendor A, an IHE PCD-01 gateway: v2.6, IEEE 11073 MDC codes and units, the containment tree in OBX-4
  (MDS ``1``, VMD ``1.1``, metric ``1.1.1.1``), the device's EUI-64 only on the MDS row's OBX-18 (the
  engine gives it to every metric below), enhanced acknowledgement NE/AL, CRLF after every segment, times
  in UTC with ``+0000``.
- Vendor B, a ward vital-signs monitor: v2.5.1, LOINC codes with UCUM units in CWE form
  (``/min^beats per minute^UCUM``), OBX-8 abnormal flags, status F, a ``ZCV`` vendor segment at the end
  with the monitor's model and firmware, LF line ends, times in UTC without a zone, OBX-18 on every OBX.
- Vendor C, an ICU monitor: v2.4, the coding system written ``LNC``, free-text units (``bpm``, ``br/min``,
  ``degC``), every value a structured numeric (``=^97``; below its validated SpO2 range it reports
  ``<^85``), enhanced acknowledgement AL/AL (a commit ACK, then the application ACK), local time with its
  offset, OBX-18 on every OBX.

NIBP (the cuff) is measured every few messages, as a real cuff cycles; ``with_nibp`` says when.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from demo.hl7 import flag, hl7_time, message, number, segment
from demo.scenarios import Patient

MonitorMessage = Callable[[Patient, str, dict[str, float], datetime, str, bool], bytes]

PCD01_PROFILE = "IHE PCD ORU-R01 2006^HL7^1.3.6.1.4.1.19376.1.6.1.1.1^ISO"
SPO2_VALIDATED_FROM = 85.0  # vendor C reports lower saturations as "<^85"

# vital -> (OBX-4 path, OBX-3 MDC code, OBX-6 MDC unit, OBX-7 range)
_MDC_METRICS = {
    "heart_rate": ("1.1.1.1", "147842^MDC_ECG_HEART_RATE^MDC", "264864^MDC_DIM_BEAT_PER_MIN^MDC", "50-120"),
    "spo2": ("1.2.1.1", "150456^MDC_PULS_OXIM_SAT_O2^MDC", "262688^MDC_DIM_PERCENT^MDC", "94-100"),
    "pulse_rate": ("1.2.1.2", "149530^MDC_PULS_OXIM_PULS_RATE^MDC", "264864^MDC_DIM_BEAT_PER_MIN^MDC", "50-120"),
    "resp_rate": ("1.3.1.1", "151562^MDC_RESP_RATE^MDC", "264928^MDC_DIM_RESP_PER_MIN^MDC", "10-24"),
    "temperature": ("1.4.1.1", "150344^MDC_TEMP^MDC", "268192^MDC_DIM_DEGC^MDC", "36.0-38.0"),
    "bp_systolic": ("1.5.1.1", "150021^MDC_PRESS_BLD_NONINV_SYS^MDC", "266016^MDC_DIM_MMHG^MDC", "90-160"),
    "bp_diastolic": ("1.5.1.2", "150022^MDC_PRESS_BLD_NONINV_DIA^MDC", "266016^MDC_DIM_MMHG^MDC", "50-100"),
    "bp_mean": ("1.5.1.3", "150023^MDC_PRESS_BLD_NONINV_MEAN^MDC", "266016^MDC_DIM_MMHG^MDC", "65-110"),
}
# OBX-4 path -> OBX-3 of the rows the metrics hang under: the ECG and SpO2 VMDs, the NIBP compound
_MDC_VMDS = {"1.1": "69798^MDC_DEV_ECG_VMD^MDC", "1.2": "69642^MDC_DEV_ANALY_SAT_O2_VMD^MDC",
             "1.5": "150020^MDC_PRESS_BLD_NONINV^MDC"}

# vital -> (OBX-3, OBX-6, low, high of OBX-7)
_LOINC_METRICS = {
    "heart_rate": ("8867-4^Heart rate^LN", "/min^beats per minute^UCUM", 60, 100),
    "spo2": ("59408-5^Oxygen saturation in Arterial blood by Pulse oximetry^LN", "%^percent^UCUM", 94, 100),
    "resp_rate": ("9279-1^Respiratory rate^LN", "/min^breaths per minute^UCUM", 12, 20),
    "temperature": ("8310-5^Body temperature^LN", "Cel^degree Celsius^UCUM", 36.0, 38.0),
    "bp_systolic": ("8480-6^Systolic blood pressure^LN", "mm[Hg]^millimeter of mercury^UCUM", 90, 140),
    "bp_diastolic": ("8462-4^Diastolic blood pressure^LN", "mm[Hg]^millimeter of mercury^UCUM", 60, 90),
    "bp_mean": ("8478-0^Mean blood pressure^LN", "mm[Hg]^millimeter of mercury^UCUM", 70, 105),
}

# vital -> (OBX-3, OBX-6) as vendor C writes them
_VENDOR_C_METRICS = {
    "heart_rate": ("8867-4^HR^LNC", "bpm"),
    "spo2": ("59408-5^SpO2^LNC", "%"),
    "resp_rate": ("9279-1^RR^LNC", "br/min"),
    "temperature": ("8310-5^TEMP^LNC", "degC"),
    "bp_systolic": ("8480-6^NBP SYS^LNC", "mmHg"),
    "bp_diastolic": ("8462-4^NBP DIA^LNC", "mmHg"),
}

CUFF = ("bp_systolic", "bp_diastolic", "bp_mean")


def _measured(table: dict[str, Any], vitals: dict[str, float], with_nibp: bool) -> list[str]:
    """The vitals this vendor reports, in its own order; the cuff's only when it measured."""
    return [vital for vital in table if vital in vitals and (with_nibp or vital not in CUFF)]


def vendor_a(patient: Patient, device_id: str, vitals: dict[str, float], now: datetime, control_id: str,
             with_nibp: bool) -> bytes:
    """PCD-01: MDC, containment in OBX-4, the EUI-64 on the MDS row, CRLF."""
    at = hl7_time(now.astimezone(UTC))
    gateway = f"ACME_GW^{device_id}^EUI-64"
    rows = [segment("OBX", {1: "1", 3: "69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC", 4: "1", 11: "R",
                            18: f"{device_id}^EUI-64"})]
    vmds_written: set[str] = set()
    for vital in _measured(_MDC_METRICS, vitals, with_nibp):
        path, code, unit, reference = _MDC_METRICS[vital]
        vmd = path.rsplit(".", 2)[0]
        if vmd in _MDC_VMDS and vmd not in vmds_written:
            vmds_written.add(vmd)
            rows.append(segment("OBX", {1: str(len(rows) + 1), 3: _MDC_VMDS[vmd], 4: vmd, 11: "R"}))
        rows.append(segment("OBX", {1: str(len(rows) + 1), 2: "NM", 3: code, 4: path, 5: number(vitals[vital]),
                                    6: unit, 7: reference, 11: "R", 14: at}))
    return message([
        f"MSH|^~\\&|{gateway}|{patient.ward}|||{at}||ORU^R01^ORU_R01|{control_id}|P|2.6|||NE|AL||"
        f"UNICODE UTF-8|||{PCD01_PROFILE}",
        segment("PID", {3: f"{patient.patient_id}^^^HOSP^MR", 5: f"{patient.family}^{patient.given}"}),
        segment("PV1", {2: "I", 3: f"{patient.ward}^{patient.room}^{patient.bed}"}),
        segment("OBR", {1: "1", 2: f"{control_id}^ACME_GW^{device_id}^EUI-64",
                        3: f"{control_id}^ACME_GW^{device_id}^EUI-64",
                        4: "182777000^monitoring of patient^SNOMED-CT", 7: at}),
        *rows,
    ], terminator="\r\n")


def vendor_b(patient: Patient, device_id: str, vitals: dict[str, float], now: datetime, control_id: str,
             with_nibp: bool) -> bytes:
    """LOINC and UCUM, abnormal flags, a Z-segment, LF line ends, zone-less UTC times."""
    at = hl7_time(now, offset=False)
    rows = []
    for vital in _measured(_LOINC_METRICS, vitals, with_nibp):
        code, unit, low, high = _LOINC_METRICS[vital]
        rows.append(segment("OBX", {1: str(len(rows) + 1), 2: "NM", 3: code, 5: number(vitals[vital]), 6: unit,
                                    7: f"{low}-{high}", 8: flag(vitals[vital], low, high), 11: "F", 14: at,
                                    18: device_id}))
    return message([
        f"MSH|^~\\&|CAREVIEW|{patient.ward}|VITALSSTREAM|HOSP|{at}||ORU^R01^ORU_R01|{control_id}|P|2.5.1",
        segment("PID", {1: "1", 3: f"{patient.patient_id}^^^HOSP^MR", 5: f"{patient.family}^{patient.given}"}),
        segment("PV1", {1: "1", 2: "I", 3: f"{patient.ward}^{patient.room}^{patient.bed}"}),
        segment("OBR", {1: "1", 3: control_id, 4: "34566-0^Vital signs^LN", 7: at}),
        *rows,
        segment("ZCV", {1: device_id, 2: "CareView 5000", 3: "4.2.1", 4: "ALARMS_ON"}),
    ], terminator="\n")


def vendor_c(patient: Patient, device_id: str, vitals: dict[str, float], now: datetime, control_id: str,
             with_nibp: bool) -> bytes:
    """Structured numerics (``=^72``, ``<^85``), ``LNC``, free-text units, AL/AL, local time with offset."""
    at = hl7_time(now.astimezone())
    rows = []
    for vital in _measured(_VENDOR_C_METRICS, vitals, with_nibp):
        code, unit = _VENDOR_C_METRICS[vital]
        rows.append(segment("OBX", {1: str(len(rows) + 1), 2: "SN", 3: code, 5: _structured(vital, vitals[vital]),
                                    6: unit, 11: "R", 14: at, 18: device_id}))
    return message([
        f"MSH|^~\\&|VITALINK|{patient.ward}-EAST|||{at}||ORU^R01|{control_id}|P|2.4|||AL|AL",
        segment("PID", {3: f"{patient.patient_id}^^^HOSP^MR", 5: f"{patient.family}^{patient.given}"}),
        segment("OBR", {1: "1", 4: "VS^Vital signs^L", 7: at}),
        *rows,
    ])


def _structured(vital: str, value: float) -> str:
    if vital == "spo2" and value < SPO2_VALIDATED_FROM:
        return f"<^{number(SPO2_VALIDATED_FROM)}"
    return f"=^{number(value)}"


VENDORS: dict[str, MonitorMessage] = {"vendor_a": vendor_a, "vendor_b": vendor_b, "vendor_c": vendor_c}
