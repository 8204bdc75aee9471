"""The simulated traffic: one sender thread per device of the script (``scenarios.DEVICES``) and the EHR
outage (``scenarios.EHR_OUTAGE``, through the mock EHR's POST /control), all on one demo clock.

``Traffic(endpoints, say).start()`` starts them; ``stop()`` stops them and waits (a sender in the middle of
an exchange finishes it: every client has a timeout). ``tally`` holds what the engine answered.
"""
from __future__ import annotations

import itertools
import random
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import requests

from demo.glucometer import glucometer
from demo.hl7 import ControlIds
from demo.monitors import VENDORS
from demo.rest_device import WearablePatch
from demo.scenarios import DEVICES, EHR_OUTAGE, Device, EhrOutage
from demo.senders import DemoClock, MllpLink, Say, Sender, Tally
from demo.soap_ehr import EhrCharting

NIBP_EVERY = 5  # a monitor's cuff measures with every fifth message
PREFIXES = {"vendor_a": "A", "vendor_b": "B", "vendor_c": "C", "glucometer": "G", "soap_ehr": "S",
            "rest_device": "R"}


@dataclass(frozen=True)
class Endpoints:
    engine_url: str  # http://127.0.0.1:8000
    mllp_host: str
    mllp_port: int
    ehr_url: str  # the mock EHR, http://127.0.0.1:8090


class Traffic:
    def __init__(self, endpoints: Endpoints, say: Say, speed: float = 1.0, seed: int | None = None,
                 devices: Sequence[Device] = DEVICES, outage: EhrOutage | None = EHR_OUTAGE):
        self.endpoints = endpoints
        self.clock = DemoClock(speed)
        self.tally = Tally()
        self._say = say
        self._seed = secrets.randbits(32) if seed is None else seed
        self._devices = devices
        self._outage = outage
        self._run_token = secrets.token_hex(3).upper()
        self._halt = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Traffic:
        self.clock = DemoClock(self.clock.speed)  # demo second 0 is now
        for index, device in enumerate(self._devices, start=1):
            rng = random.Random(f"{self._seed}:{device.device_id}")
            ids = ControlIds(f"{PREFIXES[device.source]}{index}", self._run_token)
            self._threads.append(self._sender(device, rng, ids))
        if self._outage is not None:
            self._threads.append(OutageScript(self.endpoints.ehr_url, self._outage, self.clock, self._halt,
                                              self._say))
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self._halt.set()
        for thread in self._threads:
            thread.join(timeout)

    def _sender(self, device: Device, rng: random.Random, ids: ControlIds) -> Sender:
        send, close, channel = self._sending(device, rng, ids)
        return Sender(device.device_id, channel, send, device.period, self.clock, self.tally, self._halt,
                      self._say, device.silent_after, close, rng)

    def _sending(self, device: Device, rng: random.Random, ids: ControlIds
                 ) -> tuple[Callable[[float], str], Callable[[], None] | None, str]:
        """(send, close, channel) for one device."""
        if device.source == "soap_ehr":
            return EhrCharting(self.endpoints.engine_url, device, rng, ids).send, None, "SOAP"
        if device.source == "rest_device":
            patch = WearablePatch(self.endpoints.engine_url, device, rng, ids)
            return patch.send, patch.close, "REST"
        link = MllpLink(self.endpoints.mllp_host, self.endpoints.mllp_port)
        if device.source == "glucometer":
            def measure(t: float) -> str:
                glucose = device.patient.scenario.vitals(t, rng)["glucose"]
                return link.exchange(glucometer(device.patient, device.device_id, glucose, datetime.now(UTC),
                                                ids.next()))
            return measure, link.close, "MLLP"
        build = VENDORS[device.source]
        cycle = itertools.count()

        def monitor(t: float) -> str:
            vitals = device.patient.scenario.vitals(t, rng)
            return link.exchange(build(device.patient, device.device_id, vitals, datetime.now(UTC), ids.next(),
                                       next(cycle) % NIBP_EVERY == 0))
        return monitor, link.close, "MLLP"


class OutageScript(threading.Thread):
    """Takes the mock EHR down at the outage's start and brings it back at its end."""

    def __init__(self, ehr_url: str, outage: EhrOutage, clock: DemoClock, halt: threading.Event, say: Say):
        super().__init__(name="demo-ehr-outage", daemon=True)
        self._ehr_url = ehr_url
        self._outage = outage
        self._clock = clock
        self._halt = halt
        self._say = say

    def run(self) -> None:
        steps = ((self._outage.start, "down", "EHR outage: the mock EHR answers 503 now; the engine keeps "
                  "acknowledging, its records for the EHR wait in the outbox (the EHR tile turns red)"),
                 (self._outage.end, "ok", "EHR back: the outbox delivers what waited, in order per patient "
                  "(the EHR tile turns green)"))
        for at, mode, words in steps:
            if self._halt.wait(max(0.0, self._clock.real_seconds(at - self._clock.now()))):
                return
            try:
                requests.post(f"{self._ehr_url}/control", json={"mode": mode}, timeout=5).raise_for_status()
            except requests.RequestException as error:
                self._say(f"could not set the mock EHR to {mode!r}: {type(error).__name__}")
                continue
            self._say(words)
