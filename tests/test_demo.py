"""The demo (`make demo`): its simulated messages map cleanly, its scenarios do what they promise, and the
orchestrator really runs the engine, the mock EHR and the traffic, then stops all of it on SIGINT with 0."""
from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from demo.glucometer import glucometer
from demo.hl7 import ControlIds, segment
from demo.monitors import VENDORS
from demo.rest_device import reading_body
from demo.scenarios import DEVICES, EHR_OUTAGE, PATIENTS, STABLE, Device
from demo.soap_ehr import charted_readings
from tests.http_client import free_port
from transforms.hl7.charset import decode
from transforms.hl7.conformance import conformance_problems
from transforms.hl7.header import read_header
from transforms.hl7.parser import parse
from transforms.oru import OruMapping, transform
from transforms.vitals import VitalsReading

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 5, 21, 10, 15, 0, tzinfo=UTC)
MONITORS = [d for d in DEVICES if d.source.startswith("vendor")]
GLUCOMETER = next(d for d in DEVICES if d.source == "glucometer")


def readings_of(raw: bytes) -> list[VitalsReading]:
    message = parse(decode(raw))
    return transform(message, read_header(message), OruMapping())


@pytest.mark.parametrize("device", MONITORS, ids=lambda d: f"{d.source}-{d.device_id}")
def test_every_monitor_message_maps_to_its_vitals_with_the_device_and_the_time(device: Device) -> None:
    vitals = device.patient.scenario.vitals(30, random.Random(1))
    raw = VENDORS[device.source](device.patient, device.device_id, vitals, NOW, "X1-ABC123-000001", True)
    readings = readings_of(raw)
    assert {r.vital for r in readings} <= set(vitals) and {"heart_rate", "spo2", "bp_systolic"} <= {
        r.vital for r in readings}
    for reading in readings:
        assert (reading.patient_id, reading.device_id, reading.observed_at) == (
            device.patient.patient_id, device.device_id, NOW)
        assert reading.value == pytest.approx(vitals[reading.vital])


@pytest.mark.parametrize("device", [*MONITORS, GLUCOMETER], ids=lambda d: f"{d.source}-{d.device_id}")
def test_every_simulated_hl7_message_conforms_to_its_version(device: Device) -> None:
    """hl7apy's strict check (a route's ``validation: strict``): the quirks are all legal HL7."""
    if device is GLUCOMETER:
        raw = glucometer(device.patient, device.device_id, 9.0, NOW, "G6-ABC123-000001")
    else:
        vitals = device.patient.scenario.vitals(50, random.Random(4))
        raw = VENDORS[device.source](device.patient, device.device_id, vitals, NOW, "X1-ABC123-000001", True)
    assert conformance_problems(decode(raw)) == []


def test_each_vendor_keeps_its_quirks() -> None:
    vitals = {"heart_rate": 72.0, "spo2": 80.0, "resp_rate": 14.0, "temperature": 37.0}
    patient = PATIENTS[0]
    a, b, c = (VENDORS[v](patient, "DEV-1", vitals, NOW, "X1-ABC123-000001", False)
               for v in ("vendor_a", "vendor_b", "vendor_c"))
    assert a.count(b"\r\n") == a.count(b"\r") and b"|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.2.1.1|80|" in a
    observations = [row.split(b"|") for row in a.split(b"\r\n") if row.startswith(b"OBX")]
    assert [row[18] if len(row) > 18 else b"" for row in observations] == [b"DEV-1^EUI-64"] + [b""] * (
        len(observations) - 1)  # PCD-01: the EUI-64 on the MDS row only
    assert b"\r" not in b and b"\nZCV|DEV-1|" in b and b"|8867-4^Heart rate^LN||72|/min^" in b
    assert b"\n" not in c and b"|SN|8867-4^HR^LNC||=^72|bpm|" in c and b"||<^85|%|" in c
    spo2 = next(r for r in readings_of(c) if r.vital == "spo2")
    assert (spo2.value, spo2.comparator) == (85.0, "<")


def test_no_monitor_sends_the_cuff_unless_it_measured() -> None:
    vitals = STABLE.vitals(0, random.Random(2))
    for build in VENDORS.values():
        readings = readings_of(build(PATIENTS[0], "DEV-1", vitals, NOW, "X1-ABC123-000001", False))
        assert not {r.vital for r in readings} & {"bp_systolic", "bp_diastolic", "bp_mean"}


@pytest.mark.parametrize(("mmol_l", "sent", "stored", "comparator"), [
    (7.8, b"|NM|2345-7^Glucose^LN||141|mg/dl|70-110|H|", 7.83, ""),
    (40.0, b"|SN|2345-7^Glucose^LN||>^600|mg/dl|70-110|H|", 33.3, ">"),
])
def test_the_glucometer_speaks_v23_in_mg_dl(mmol_l: float, sent: bytes, stored: float, comparator: str) -> None:
    raw = glucometer(GLUCOMETER.patient, GLUCOMETER.device_id, mmol_l, NOW, "G6-ABC123-000001")
    assert b"|ORU^R01|G6-ABC123-000001|P|2.3\r" in raw and sent in raw
    [reading] = readings_of(raw)
    assert (reading.vital, reading.value, reading.unit, reading.comparator, reading.device_id) == (
        "glucose", stored, "mmol/L", comparator, "GLU-0417")


def test_control_ids_are_unique_and_fit_msh_10() -> None:
    first, second = ControlIds("A1"), ControlIds("A1")
    ids = [first.next() for _ in range(1000)] + [second.next() for _ in range(1000)]
    assert len(set(ids)) == len(ids) and max(map(len, ids)) <= 20


def test_a_segment_puts_every_field_at_its_number() -> None:
    assert segment("OBX", {1: "1", 3: "X", 18: "DEV"}).split("|")[18] == "DEV"


def test_the_ehr_charts_fahrenheit_and_the_patch_posts_canonical_json() -> None:
    ehr = next(d for d in DEVICES if d.source == "soap_ehr")
    charted = {r["Vital"]: r for r in charted_readings(ehr, {"temperature": 38.4, "heart_rate": 96.0}, NOW)}
    assert (charted["temperature"]["Value"], charted["temperature"]["Unit"]) == ("101.1", "[degF]")
    assert charted["heart_rate"]["ObservedAt"] == "2026-05-21T10:15:00Z"
    patch = next(d for d in DEVICES if d.source == "rest_device")
    assert reading_body(patch, {"temperature": 36.9, "spo2": 98.0}, NOW) == {
        "patient_id": "PAT-1008", "timestamp": "2026-05-21T10:15:00.000Z", "temperature_c": 36.9, "spo2": 98.0}


def trend_seen_by(device: Device, until: float, seed: int) -> float | None:
    """The first demo second at which the engine's trend rule holds for this device's readings."""
    rng, heart, spo2 = random.Random(seed), [], []
    t = 0.0
    while t <= until:
        vitals = device.patient.scenario.vitals(t, rng)
        heart.append(vitals["heart_rate"])
        spo2.append(vitals["spo2"])
        if heart[-1] - min(heart) >= 20 and max(spo2) - spo2[-1] >= 5:
            return t
        t += device.period
    return None


@pytest.mark.parametrize("seed", range(20))
def test_the_slow_deterioration_raises_the_trend_within_a_minute_and_no_one_else_does(seed: int) -> None:
    for device in (d for d in DEVICES if "heart_rate" in d.patient.scenario.baseline):
        seen = trend_seen_by(device, 120, seed)
        assert (seen is not None and seen <= 55) if device.patient.scenario.name == "slow deterioration" else (
            seen is None), device.device_id


def test_stable_patients_stay_inside_the_default_bands() -> None:
    rng = random.Random(3)
    for t in range(0, 300, 3):
        vitals = STABLE.vitals(t, rng)
        assert 50 <= vitals["heart_rate"] <= 120 and vitals["spo2"] >= 94 and 36.0 <= vitals["temperature"] <= 38.0
        assert 10 <= vitals["resp_rate"] <= 24 and 90 <= vitals["bp_systolic"] <= 160


def test_the_ehr_is_down_from_40_to_70_seconds() -> None:
    assert [EHR_OUTAGE.mode_at(t) for t in (39.9, 40, 69.9, 70)] == ["ok", "down", "down", "ok"]


# The whole demo, as `make demo` runs it.

class Output:
    """The orchestrator's stdout, read in a thread (so a full pipe never blocks it)."""

    def __init__(self, process: subprocess.Popen[str]):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line.rstrip("\n"))

    def text(self) -> str:
        self._thread.join(10)
        return "\n".join(self.lines)


def wait_for(condition: Callable[[], Any], what: str, process: subprocess.Popen[str], output: Output,
             timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the demo stopped while waiting for {what}:\n" + "\n".join(output.lines)
        try:
            found = condition()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {timeout} s:\n" + "\n".join(output.lines))


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Output, dict[str, int], Path]]:
    ports = {"http": free_port(), "mllp": free_port(), "ehr": free_port()}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--http-port", str(ports["http"]), "--mllp-port",
         str(ports["mllp"]), "--ehr-port", str(ports["ehr"]), "--state-dir", str(tmp_path / "demo"), "--speed", "2",
         "--summary-every", "1", "--seed", "7"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = Output(process)
    try:
        yield process, output, ports, tmp_path / "demo"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        output.text()
        assert process.stdout is not None
        process.stdout.close()


@pytest.mark.timeout(180)
def test_make_demo_runs_everything_and_stops_cleanly_on_sigint(demo: tuple[subprocess.Popen[str], Output,
                                                                           dict[str, int], Path]) -> None:
    process, output, ports, state = demo
    engine = f"http://127.0.0.1:{ports['http']}"
    with httpx.Client(timeout=5) as http:
        def items(url: str) -> list[dict[str, Any]]:
            return http.get(url).raise_for_status().json()["items"]

        def every_device_stored() -> bool:
            return all(items(f"{engine}/api/v1/readings?device_id={device.device_id}&limit=1") for device in DEVICES)

        wait_for(every_device_stored, "readings of every simulated device", process, output)
        alerts = wait_for(lambda: items(f"{engine}/api/v1/alerts"), "alert", process, output)
        received = wait_for(lambda: http.get(f"http://127.0.0.1:{ports['ehr']}/received").json(),
                            "record at the mock EHR", process, output)
        assert not items(f"{engine}/api/v1/messages?status=ERROR")
        assert {m["route"] for m in items(f"{engine}/api/v1/messages?limit=1000")} == {"default", "rest", "soap"}
    assert {a["patient_id"] for a in alerts} <= {p.patient_id for p in PATIENTS}
    assert {r["kind"] for r in received} <= {"observations", "alert"}

    process.send_signal(signal.SIGINT)
    assert process.wait(90) == 0, output.text()
    text = output.text()
    assert f"    {engine}/" in text and text.rstrip().endswith("stopped")
    summaries = [line for line in text.splitlines() if "| stored " in line]
    assert summaries and not any(word in line for line in summaries for word in (" AE", " AR", " CE", "error"))
    assert (state / "demo.db").exists() and (state / "engine.log").exists() and (state / "mock-ehr.jsonl").exists()
    with pytest.raises(httpx.ConnectError):  # the engine is gone with it
        httpx.get(f"{engine}/readyz", timeout=2)
