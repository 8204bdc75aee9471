"""Building synthetic ORU^R01 messages for tests (never real PHI)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "hl7"

# vital -> (OBX-3, OBX-6) as a LOINC-speaking sender writes them
CODES = {
    "heart_rate": ("8867-4^Heart rate^LN", "/min"),
    "spo2": ("59408-5^SpO2^LN", "%"),
    "temperature": ("8310-5^Temp^LN", "Cel"),
    "resp_rate": ("9279-1^Resp rate^LN", "/min"),
    "bp_systolic": ("8480-6^SBP^LN", "mm[Hg]"),
    "glucose": ("15074-8^Glucose^LN", "mmol/L"),
}


def oru(control_id: str, patient: str, time: str, values: Sequence[tuple[str, float]], *,
        device: str = "", sender: str = "TESTMON", version: str = "2.5", ack_modes: str = "") -> bytes:
    """An ORU^R01 with one OBX per (vital, value), all observed at ``time`` (HL7 DTM)."""
    accept, _, application = ack_modes.partition("/")
    segments = [f"MSH|^~\\&|{sender}|WARD|||{time}||ORU^R01^ORU_R01|{control_id}|P|{version}|||"
                f"{accept}|{application}",
                f"PID|||{patient}^^^HOSP^MR", f"OBR|1||||||{time}"]
    for number, (vital, value) in enumerate(values, start=1):
        code, unit = CODES[vital]
        segments.append(f"OBX|{number}|NM|{code}||{value}|{unit}|||||F|||{time}||||{device}")
    return ("\r".join(segments) + "\r").encode()


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()
