"""The demo's script: who the patients are, what happens to each, which device sends it, when the EHR is down.

Times are demo seconds since the traffic started: a clinical "minute" of a scenario takes a second or so of
the demo, so a slow deterioration fits into one minute on screen. ``--speed`` compresses them further. The
readings themselves always carry the real time they are sent.

A scenario is a baseline and ramps: between a ramp's start and end a vital moves linearly from where it was
to the ramp's target, then stays there. Readings add gaussian noise and are rounded as devices round them.
Values are in the canonical units (``/min``, ``%``, ``Cel``, ``mm[Hg]``, ``mmol/L``); each sender converts
to the units its device speaks (mg/dL for the glucometer, degF for the EHR's flowsheet).

What a newcomer sees within a minute (default bands: docs/architecture.md, ../shared/ARCHITECTURE.md):

- PAT-1001, PAT-1005 (monitors) and PAT-1008 (wearable): stable, no alerts;
- PAT-1002, tachycardia: heart rate warning (> 120/min) from ~10 s, critical (> 140) from ~45 s;
- PAT-1003, desaturation: SpO2 warning (< 94 %) from ~12 s, critical (< 90) from ~22 s, respiratory rate;
- PAT-1004, slow deterioration: the trend alert (heart rate +20/min and SpO2 -5 points within 10 minutes)
  from ~30 s, with SpO2, temperature and respiratory rate alerts on the way;
- PAT-1006, hyperglycaemia (glucometer): glucose warning (> 10 mmol/L) from ~12 s, critical (> 13.9) ~36 s;
- PAT-1007, post-operative fever (the EHR's charting): temperature warning (> 38.0 Cel).

PAT-1005's monitor goes silent at 12 s: the stale-devices job (every 30 s) opens a ``device_offline``
incident at its next run. The mock EHR is down from 40 s to 70 s: the engine's records for it wait in the
outbox and are delivered when it is back.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

# vital -> (standard deviation of the noise, decimals the device reports)
NOISE: dict[str, tuple[float, int]] = {
    "heart_rate": (1.8, 0),
    "spo2": (0.5, 0),
    "resp_rate": (0.8, 0),
    "temperature": (0.04, 1),
    "bp_systolic": (3.0, 0),
    "bp_diastolic": (2.0, 0),
    "glucose": (0.25, 1),
}


@dataclass(frozen=True)
class Ramp:
    """``vital`` moves linearly to ``to`` between ``start`` and ``end`` (demo seconds)."""

    vital: str
    start: float
    end: float
    to: float


@dataclass(frozen=True)
class Scenario:
    name: str
    baseline: dict[str, float]
    ramps: tuple[Ramp, ...] = ()

    def mean(self, vital: str, t: float) -> float:
        """The vital's value without noise at demo second ``t``; ramps apply in order."""
        value = self.baseline[vital]
        for ramp in (r for r in self.ramps if r.vital == vital and t > r.start):
            share = 1.0 if t >= ramp.end else (t - ramp.start) / (ramp.end - ramp.start)
            value += (ramp.to - value) * share
        return value

    def vitals(self, t: float, rng: random.Random) -> dict[str, float]:
        """One set of readings at ``t``: noise, rounding, and what follows from them (pulse rate from the
        oximeter, the mean arterial pressure of the cuff)."""
        readings = {}
        for vital in self.baseline:
            deviation, decimals = NOISE[vital]
            readings[vital] = round(rng.gauss(self.mean(vital, t), deviation), decimals)
        if "spo2" in readings:
            readings["spo2"] = min(readings["spo2"], 100.0)
        if "heart_rate" in readings:
            readings["pulse_rate"] = readings["heart_rate"] + rng.choice((-1.0, 0.0, 0.0, 1.0))
        if "bp_systolic" in readings and "bp_diastolic" in readings:
            readings["bp_mean"] = float(round((readings["bp_systolic"] + 2 * readings["bp_diastolic"]) / 3))
        return readings


STABLE = Scenario("stable", {"heart_rate": 74, "spo2": 98, "resp_rate": 15, "temperature": 36.9,
                             "bp_systolic": 122, "bp_diastolic": 78})
TACHYCARDIA = Scenario(
    "tachycardia", {"heart_rate": 104, "spo2": 97, "resp_rate": 19, "temperature": 37.6, "bp_systolic": 128,
                    "bp_diastolic": 82},
    (Ramp("heart_rate", 0, 20, 132), Ramp("heart_rate", 35, 50, 148), Ramp("heart_rate", 80, 100, 128)))
DESATURATION = Scenario(
    "desaturation", {"heart_rate": 86, "spo2": 96, "resp_rate": 20, "temperature": 37.4, "bp_systolic": 118,
                     "bp_diastolic": 74},
    (Ramp("spo2", 5, 25, 88), Ramp("resp_rate", 5, 25, 27), Ramp("heart_rate", 5, 25, 92),
     Ramp("spo2", 40, 55, 84), Ramp("spo2", 75, 95, 92), Ramp("resp_rate", 75, 95, 21)))
DETERIORATION = Scenario(
    "slow deterioration", {"heart_rate": 80, "spo2": 97, "resp_rate": 16, "temperature": 37.1,
                           "bp_systolic": 126, "bp_diastolic": 80},
    (Ramp("heart_rate", 0, 45, 110), Ramp("spo2", 0, 45, 89), Ramp("resp_rate", 0, 45, 25),
     Ramp("temperature", 0, 45, 38.3), Ramp("bp_systolic", 0, 45, 106), Ramp("bp_diastolic", 0, 45, 66)))
HYPERGLYCAEMIA = Scenario("hyperglycaemia", {"glucose": 7.8},
                          (Ramp("glucose", 0, 40, 14.6), Ramp("glucose", 60, 100, 8.4)))
FEVER = Scenario("post-operative fever", {"heart_rate": 96, "spo2": 96, "resp_rate": 18, "temperature": 38.4,
                                          "bp_systolic": 116, "bp_diastolic": 72})

Source = Literal["vendor_a", "vendor_b", "vendor_c", "glucometer", "soap_ehr", "rest_device"]


@dataclass(frozen=True)
class Patient:
    """Synthetic: ``family``/``given`` end up in PID-5 and are never real names."""

    patient_id: str
    family: str
    given: str
    ward: str
    room: str
    bed: str
    scenario: Scenario


@dataclass(frozen=True)
class Device:
    """One simulated sender: its id (as the engine stores it), what it speaks, how often it sends (demo
    seconds), and when it goes silent (None: never)."""

    device_id: str
    source: Source
    patient: Patient
    period: float
    silent_after: float | None = None


def _patient(number: int, given: str, ward: str, bed: str, scenario: Scenario) -> Patient:
    return Patient(f"PAT-{1000 + number}", "Demo", given, ward, f"{number:02d}", bed, scenario)


PATIENTS = (
    _patient(1, "Alba", "ICU", "A", STABLE),
    _patient(2, "Bruno", "ICU", "A", TACHYCARDIA),
    _patient(3, "Carla", "ICU", "B", DESATURATION),
    _patient(4, "Dario", "ICU", "A", DETERIORATION),
    _patient(5, "Elena", "ICU", "B", STABLE),
    _patient(6, "Fabio", "WARD5", "A", HYPERGLYCAEMIA),
    _patient(7, "Greta", "WARD5", "B", FEVER),
    _patient(8, "Hugo", "WARD5", "C", STABLE),
)
SILENT_AFTER_SECONDS = 12.0

# Vendor A reports its EUI-64 (IHE PCD-01); the stored device id is that EUI-64.
DEVICES = (
    Device("0012AB34CD560001", "vendor_a", PATIENTS[0], period=3.0),
    Device("MON-B-0302", "vendor_b", PATIENTS[1], period=3.0),
    Device("MON-C-0403", "vendor_c", PATIENTS[2], period=3.0),
    Device("0012AB34CD560004", "vendor_a", PATIENTS[3], period=3.0),
    Device("MON-C-0405", "vendor_c", PATIENTS[4], period=3.0, silent_after=SILENT_AFTER_SECONDS),
    Device("GLU-0417", "glucometer", PATIENTS[5], period=6.0),
    Device("EHR-FLOWSHEET-W5", "soap_ehr", PATIENTS[6], period=5.0),
    Device("PATCH-88A1", "rest_device", PATIENTS[7], period=4.0),
)


@dataclass(frozen=True)
class EhrOutage:
    """The mock EHR answers 503 from ``start`` to ``end`` (demo seconds)."""

    start: float = 40.0
    end: float = 70.0

    def mode_at(self, t: float) -> Literal["ok", "down"]:
        return "down" if self.start <= t < self.end else "ok"


EHR_OUTAGE = EhrOutage()
