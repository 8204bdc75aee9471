"""The running engine over real loopback sockets: routes, MLLP, group commit, HTTP, clean shutdown."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from adapters.mllp.client import MllpClient
from adapters.sql_store import SqlStore
from adapters.sql_tables import alerts, device_readings, messages
from engine.channel import Channel
from engine.migrations import MigrationError
from engine.run import Engine, build, serve
from engine.settings import Settings
from tests.messages import FIXTURES, fixture, oru
from tests.servers import free_port
from tests.test_soap_pcd01 import pcd_service

ROOT = Path(__file__).resolve().parent.parent
ROUTE = """
source:
  kind: mllp
  host: 127.0.0.1
  port: 0
"""


@contextmanager
def running(db_url: str, routes: Path) -> Iterator[Engine]:
    """The engine in a background event loop; stopped (as by Ctrl-C) when the block ends."""
    engine = build(Settings(db_url=db_url, http_port=free_port(), routes_dir=routes))
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(engine, stop),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not (engine.http and engine.http.started) and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield engine
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()


@pytest.fixture
def routes(tmp_path: Path) -> Path:
    folder = tmp_path / "routes"
    folder.mkdir()
    (folder / "ward.yaml").write_text(ROUTE)
    return folder


def count(db_url: str, table) -> int:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        value = int(conn.execute(select(func.count()).select_from(table)).scalar_one())
    engine.dispose()
    return value


def test_a_server_database_behind_its_scripts_stops_the_start(postgres_url: str, routes: Path) -> None:
    with pytest.raises(MigrationError, match=r"001_schema\.sql, 002_default_thresholds\.sql, 003_evaluate_alerts"):
        build(Settings(db_url=postgres_url, routes_dir=routes))


def test_monitors_send_and_get_aa_after_the_readings_are_stored(store: SqlStore, store_url: str,
                                                                routes: Path) -> None:
    with running(store_url, routes) as engine, \
            MllpClient("127.0.0.1", engine.listeners[0].port, timeout=30) as client:
        for path in sorted(FIXTURES.glob("*.hl7")):
            acks = client.exchange(path.read_bytes())
            assert acks[-1].split(b"\r")[1][4:6] == b"AA", path.name
        assert count(store_url, device_readings) == 30
        assert count(store_url, alerts) == 7
        base = f"http://127.0.0.1:{engine.settings.http_port}"
        response = httpx.get(f"{base}/healthz", timeout=10)
        critical = httpx.get(f"{base}/api/v1/alerts", params={"severity": "critical"}, timeout=10)
        ready = httpx.get(f"{base}/readyz", timeout=10)
        docs = httpx.get(f"{base}/docs", timeout=10)
        metrics = httpx.get(f"{base}/metrics", timeout=10)
        posted = httpx.post(f"{base}/api/v1/devices/APP-1/readings", timeout=30,
                            json={"patient_id": "P-APP", "timestamp": "2024-03-05T10:10:00Z", "spo2": 88})
    assert response.status_code == 200 and response.json()["channels"][0]["route"] == "ward"
    assert response.json()["store_process"] == {"running": True, "restarts": 0}
    assert posted.status_code == 201 and posted.json()["alerts"][0]["severity"] == "critical"
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert metrics.status_code == 200 and "vitalsstream_" in metrics.text
    assert {a["patient_id"] for a in critical.json()["items"]} == {"G-555", "W3-2", "PACU-3301"}
    assert ready.status_code == 200


def test_many_connections_at_once_all_get_their_acks(sqlite_url: str, routes: Path) -> None:
    with running(sqlite_url, routes) as engine:
        port = engine.listeners[0].port

        def monitor(number: int) -> list[bytes]:
            with MllpClient("127.0.0.1", port, timeout=30) as client:
                return [client.exchange(oru(f"M{number}-{n}", f"P{number}", f"202401011000{n:02d}",
                                            [("heart_rate", 60 + n)]))[0] for n in range(25)]

        results: list[list[bytes]] = []
        threads = [threading.Thread(target=lambda n=n: results.append(monitor(n))) for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert engine.committer.batches < engine.committer.messages  # group commit happened
    assert sum(len(r) for r in results) == 400 and all(b"MSA|AA|" in ack for r in results for ack in r)
    assert count(sqlite_url, messages) == 400


def test_stop_lets_a_message_in_flight_finish_and_be_acknowledged(
        sqlite_url: str, routes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slow = Channel.store_batch

    def store_slowly(self: Channel, batch):  # type: ignore[no-untyped-def]
        time.sleep(1.0)
        return slow(self, batch)

    monkeypatch.setattr(Channel, "store_batch", store_slowly)
    answers: list[list[bytes]] = []
    with running(sqlite_url, routes) as engine:
        client = MllpClient("127.0.0.1", engine.listeners[0].port, timeout=30)
        client.connect()
        sender = threading.Thread(target=lambda: answers.append(client.exchange(fixture("pcd01_nibp.hl7"))))
        sender.start()
        time.sleep(0.3)  # the message is being stored when the stop comes
    sender.join(10)
    client.close()
    assert answers and b"MSA|AA|MSGID1234" in answers[0][0]
    assert count(sqlite_url, messages) == 1


@pytest.mark.timeout(90)
def test_database_down_gets_ar_207_never_aa(routes: Path) -> None:
    with running("postgresql+psycopg://vitals@127.0.0.1:9/none", routes) as engine, \
            MllpClient("127.0.0.1", engine.listeners[0].port, timeout=60) as client:
        [ack] = client.exchange(fixture("loinc_vitals_v251.hl7"))
    assert b"MSA|AR|VC-0001" in ack and b"|207^Application internal error^HL70357|" in ack


def test_the_engine_refuses_to_start_with_a_broken_route(tmp_path: Path) -> None:
    (tmp_path / "icu.yaml").write_text("source:\n  kind: mllp\n  prot: 2576\n")
    result = subprocess.run([sys.executable, "-m", "engine.cli", "run"], capture_output=True, text=True,
                            env={**os.environ, "VITALS_ROUTES": str(tmp_path),
                                 "VITALS_DB_URL": f"sqlite:///{tmp_path / 'v.db'}"}, cwd=ROOT, timeout=60)
    assert result.returncode == 1
    assert "icu.yaml:3:3: source.prot: unknown key 'prot' - did you mean 'port'?" in result.stderr


def send(port: int, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "engine.cli", "send", "--port", str(port), "--timeout", "20",
                           *args], input=stdin, capture_output=True, cwd=ROOT, timeout=120)


def test_send_prints_a_line_per_message_and_fails_on_anything_but_aa(sqlite_url: str, routes: Path) -> None:
    with running(sqlite_url, routes) as engine:
        port = engine.listeners[0].port
        good = send(port, str(FIXTURES / "pcd01_nibp.hl7"), str(FIXTURES / "enhanced_al_al.hl7"))
        bad = send(port, str(FIXTURES / "bad" / "nonnumeric_value.hl7"), str(FIXTURES / "bad" / "ack_message.hl7"))
        piped = send(port, "-", stdin=fixture("mdc_monitor_lf.hl7"))
    assert good.returncode == 0, good.stderr
    lines = good.stdout.decode().splitlines()
    assert lines[0].startswith(f"{FIXTURES / 'pcd01_nibp.hl7'}: MSGID1234 AA ") and lines[0].endswith(" ms")
    assert " ENH-1 CA/AA " in lines[1]
    assert bad.returncode == 1 and " BAD-1 AE " in bad.stdout.decode() and " A-1 no ACK " in bad.stdout.decode()
    assert piped.returncode == 0 and piped.stdout.decode().startswith("-: MON-77 AA ")
    assert count(sqlite_url, messages) == 5


def test_send_reports_a_listener_that_is_not_there() -> None:
    result = send(free_port(), str(FIXTURES / "pcd01_nibp.hl7"))
    assert result.returncode == 2 and b"send failed" in result.stderr


def test_soap_and_pcd01_share_the_group_committer(sqlite_url: str, routes: Path) -> None:
    with running(sqlite_url, routes) as engine:
        before = engine.committer.messages
        ack = pcd_service(f"http://127.0.0.1:{engine.settings.http_port}").CommunicatePCDData(
            fixture("pcd01_nibp.hl7").decode("ascii"))
        assert "MSA|AA|MSGID1234" in ack and engine.committer.messages == before + 1
    assert count(sqlite_url, device_readings) == 2
    database = create_engine(sqlite_url)
    with database.connect() as conn:  # PCD-01 took the HL7 path of the MLLP route
        assert conn.execute(select(messages.c.route)).scalar_one() == "ward"
    database.dispose()


def test_rest_and_soap_submissions_take_their_route_files(sqlite_url: str, routes: Path) -> None:
    (routes / "devices.yaml").write_text("source: {kind: rest}\n")
    with running(sqlite_url, routes) as engine:
        assert [listener.name for listener in engine.listeners] == ["ward"]  # no listener for a rest route
        posted = httpx.post(f"http://127.0.0.1:{engine.settings.http_port}/api/v1/devices/APP-2/readings",
                            json={"patient_id": "P-R", "timestamp": "2024-03-05T10:10:00Z", "spo2": 97}, timeout=30)
    assert posted.status_code == 201
    database = create_engine(sqlite_url)
    with database.connect() as conn:
        assert conn.execute(select(messages.c.route)).scalar_one() == "devices"
    database.dispose()
