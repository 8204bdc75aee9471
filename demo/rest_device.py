"""A simulated wearable patch that POSTs its readings as JSON to ``/api/v1/devices/{device_id}/readings``.

The body is the one docs/rest.md describes (values in canonical units, the field names say which), with
the real time of the measurement; each POST carries its own ``Idempotency-Key``.
"""
from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import requests

from demo.hl7 import ControlIds
from demo.scenarios import Device

# canonical vital -> body field
FIELDS = {"heart_rate": "heart_rate", "spo2": "spo2", "temperature": "temperature_c", "resp_rate": "resp_rate"}


def reading_body(device: Device, vitals: dict[str, float], now: datetime) -> dict[str, Any]:
    body: dict[str, Any] = {"patient_id": device.patient.patient_id,
                            "timestamp": now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")}
    body.update({name: vitals[vital] for vital, name in FIELDS.items() if vital in vitals})
    return body


class WearablePatch:
    """``send(t)`` POSTs the readings at demo second ``t``; answers ``HTTP <status>``."""

    def __init__(self, engine_url: str, device: Device, rng: random.Random, keys: ControlIds, timeout: float = 10):
        self.device = device
        self._url = f"{engine_url}/api/v1/devices/{device.device_id}/readings"
        self._rng = rng
        self._keys = keys
        self._timeout = timeout
        self._session = requests.Session()

    def send(self, t: float) -> str:
        body = reading_body(self.device, self.device.patient.scenario.vitals(t, self._rng), datetime.now(UTC))
        answer = self._session.post(self._url, json=body, headers={"Idempotency-Key": self._keys.next()},
                                    timeout=self._timeout)
        return f"HTTP {answer.status_code}"

    def close(self) -> None:
        self._session.close()
