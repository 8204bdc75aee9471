"""A simulated EHR charting a nurse's vital signs into the engine with SOAP ``SubmitVitals`` (zeep).

As docs/soap.md and the README show: the WSDL is read from wsdl/vitals.wsdl (never fetched), DTDs are
forbidden, every call has a timeout, and the service address is the demo engine's. The flowsheet charts
temperature in degrees Fahrenheit (``[degF]``, converted by the engine), the rest in canonical units; every
call carries its own ``IdempotencyKey``, so a resend after a lost answer would be recognised.
"""
from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import zeep
from zeep.exceptions import Fault, TransportError
from zeep.transports import Transport

from demo.hl7 import ControlIds
from demo.scenarios import Device

WSDL = Path(__file__).resolve().parent.parent / "wsdl" / "vitals.wsdl"
SERVICE = "{urn:vitalsstream:vitals:1}VitalsService"
CALLER = "EHR-DEMO"
# vital -> unit the flowsheet charts it in
CHARTED = {"heart_rate": "/min", "resp_rate": "/min", "spo2": "%", "temperature": "[degF]",
           "bp_systolic": "mm[Hg]", "bp_diastolic": "mm[Hg]"}


def fahrenheit(celsius: float) -> float:
    return round(celsius * 9 / 5 + 32, 1)


def charted_readings(device: Device, vitals: dict[str, float], now: datetime) -> list[dict[str, Any]]:
    """The ``Reading`` elements of one SubmitVitals: one per charted vital."""
    at = now.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    readings = []
    for vital, unit in CHARTED.items():
        if vital in vitals:
            value = fahrenheit(vitals[vital]) if unit == "[degF]" else vitals[vital]
            readings.append({"PatientId": device.patient.patient_id, "DeviceId": device.device_id, "Vital": vital,
                             "Value": f"{value:g}", "Unit": unit, "ObservedAt": at})
    return readings


class EhrCharting:
    """``send(t)`` charts the patient's vitals at demo second ``t``; answers ``ok``, ``fault`` or ``HTTP <status>``."""

    def __init__(self, engine_url: str, device: Device, rng: random.Random, keys: ControlIds, timeout: float = 10):
        self.device = device
        self._rng = rng
        self._keys = keys
        client = zeep.Client(str(WSDL), settings=zeep.Settings(forbid_dtd=True),
                             transport=Transport(timeout=timeout, operation_timeout=timeout))
        self._service = client.create_service(SERVICE, f"{engine_url}/soap/vitals")

    def send(self, t: float) -> str:
        vitals = self.device.patient.scenario.vitals(t, self._rng)
        try:
            self._service.SubmitVitals(Reading=charted_readings(self.device, vitals, datetime.now(UTC)),
                                       Caller=CALLER, IdempotencyKey=self._keys.next())
        except Fault:
            return "fault"
        except TransportError as error:
            return f"HTTP {error.status_code}"
        return "ok"
