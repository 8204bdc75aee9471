"""Monitor to EHR end to end: the running engine, real MLLP, the outbox, real SOAP to the mock EHR.

EHR down then up, slower than the timeout, a Client fault fixed and retried, and the engine killed with
rows pending: everything arrives, in order per patient, and the mock's idempotency log shows each record
once.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from adapters.mllp.client import MllpClient
from adapters.mock_ehr.server import MockEhr
from adapters.sql_store import SqlStore
from adapters.sql_tables import outbox
from engine import outbox_actions
from tests.messages import oru
from tests.servers import free_port
from tests.test_engine import running

ROOT = Path(__file__).resolve().parent.parent


def route(endpoint: str, port: int = 0, timeout: float = 2.0) -> str:
    return f"""
source: {{kind: mllp, host: 127.0.0.1, port: {port}}}
destinations:
  - kind: sql
  - kind: ehr_soap
    name: ehr
    endpoint: {endpoint}
    timeout_seconds: {timeout}
    retry: {{first_delay_seconds: 0.05, max_delay_seconds: 0.3, max_attempts: 100}}
"""


def wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def outbox_rows(db_url: str) -> list:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = list(conn.execute(select(outbox).order_by(outbox.c.id)))
    engine.dispose()
    return rows


@pytest.fixture
def ehr(tmp_path: Path) -> Iterator[MockEhr]:
    with MockEhr(tmp_path / "ehr.jsonl") as mock:
        yield mock


def routes_for(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "routes"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ward.yaml").write_text(text)
    return folder


def send_all(port: int, messages: list[bytes]) -> None:
    with MllpClient("127.0.0.1", port, timeout=30) as client:
        for message in messages:
            [ack] = client.exchange(message)
            assert b"MSA|AA|" in ack


def messages_for(patients: list[str]) -> list[bytes]:
    return [oru(f"M-{n}", patient, f"2026112110{n // 60:02d}{n % 60:02d}", [("heart_rate", 60 + n)])
            for n, patient in enumerate(patients)]


def assert_each_once_in_order(ehr: MockEhr, keys_by_patient: dict[str, list[str]]) -> None:
    records = ehr.received(kind="observations")
    assert sorted(r["idempotency_key"] for r in records) == sorted(k for keys in keys_by_patient.values()
                                                                     for k in keys)
    for patient, keys in keys_by_patient.items():
        assert [r["idempotency_key"] for r in records if r["patient_id"] == patient] == keys


def keys_by_patient(db_url: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for row in outbox_rows(db_url):
        if row.kind == "observations":
            found.setdefault(row.patient_id, []).append(row.idempotency_key)
    return found


def test_a_monitor_message_and_its_alert_reach_the_ehr(store: SqlStore, store_url: str, tmp_path: Path,
                                                       ehr: MockEhr) -> None:
    with running(store_url, routes_for(tmp_path, route(ehr.endpoint))) as engine:
        started = time.monotonic()
        send_all(engine.listeners[0].port, [oru("A-1", "P1", "20261121100000", [("heart_rate", 150)])])
        wait_for(lambda: len(ehr.received()) == 2)
        print(f"monitor to EHR: {time.monotonic() - started:.3f} s")  # reported, never asserted
    [observations] = ehr.received(kind="observations")
    [alert] = ehr.received(kind="alert")
    assert observations["patient_id"] == alert["patient_id"] == "P1"
    assert [row.state for row in outbox_rows(store_url)] == ["SENT", "SENT"]
    assert all(row.remote_id for row in outbox_rows(store_url))


def test_an_ehr_down_for_a_while_gets_everything_in_order_once(sqlite_url: str, tmp_path: Path,
                                                                ehr: MockEhr) -> None:
    ehr.stop()
    patients = ["P1", "P2", "P3"] * 8
    with running(sqlite_url, routes_for(tmp_path, route(ehr.endpoint))) as engine:
        send_all(engine.listeners[0].port, messages_for(patients))
        wait_for(lambda: all(row.attempts >= 2 for row in outbox_rows(sqlite_url)[:3]))  # refused, retrying
        ehr.start()
        wait_for(lambda: all(row.state == "SENT" for row in outbox_rows(sqlite_url)))
        assert_each_once_in_order(ehr, keys_by_patient(sqlite_url))
        assert all(r["calls"] == 1 for r in ehr.received())


def test_an_ehr_slower_than_the_timeout_is_retried_and_can_tell_the_resend(sqlite_url: str, tmp_path: Path,
                                                                           ehr: MockEhr) -> None:
    ehr.set_mode("slow", delay_seconds=1.5, times=1)
    with running(sqlite_url, routes_for(tmp_path, route(ehr.endpoint, timeout=0.5))) as engine:
        send_all(engine.listeners[0].port, messages_for(["P1"]))
        wait_for(lambda: [row.state for row in outbox_rows(sqlite_url)] == ["SENT"])
        [row] = outbox_rows(sqlite_url)
    assert row.attempts == 2
    wait_for(lambda: len(ehr.received()) == 1 and ehr.received()[0]["calls"] == 2)  # one record, a resend it saw


def test_a_client_fault_is_a_dead_letter_until_an_operator_retries_it(sqlite_url: str, tmp_path: Path,
                                                                      ehr: MockEhr) -> None:
    ehr.set_mode("client_fault")
    with running(sqlite_url, routes_for(tmp_path, route(ehr.endpoint))) as engine:
        send_all(engine.listeners[0].port, messages_for(["P1", "P2"]))
        wait_for(lambda: [row.state for row in outbox_rows(sqlite_url)] == ["DEAD", "DEAD"])
        assert all(row.attempts == 1 and "Client" in row.last_error for row in outbox_rows(sqlite_url))
        ehr.set_mode("ok")  # the EHR's interface team fixed their side
        store = SqlStore.from_url(sqlite_url)
        assert outbox_actions.retry_dead(store, "ehr") == 2
        store.close()
        wait_for(lambda: [row.state for row in outbox_rows(sqlite_url)] == ["SENT", "SENT"])
    assert len(ehr.received()) == 2


def engine_process(db_url: str, routes: Path, mllp_port: int, node: str = "engine-1") -> subprocess.Popen[bytes]:
    env = {**os.environ, "VITALS_DB_URL": db_url, "VITALS_ROUTES": str(routes), "VITALS_NODE_NAME": node,
           "VITALS_HTTP_PORT": str(free_port())}
    log = routes.parent / "engine.log"
    with log.open("ab") as output:
        process = subprocess.Popen([sys.executable, "-m", "engine.cli", "run"], cwd=ROOT, env=env,
                                   stdout=output, stderr=output)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with MllpClient("127.0.0.1", mllp_port, timeout=5):
                return process
        except OSError:
            assert process.poll() is None, log.read_text()
            time.sleep(0.1)
    process.kill()
    raise AssertionError("the engine did not start listening")


def test_an_engine_killed_with_rows_pending_delivers_them_after_restart_once(
        store: SqlStore, store_url: str, tmp_path: Path, ehr: MockEhr) -> None:
    port = free_port()
    routes = routes_for(tmp_path, route(ehr.endpoint, port=port))
    ehr.stop()
    engine = engine_process(store_url, routes, port)
    try:
        send_all(port, messages_for(["P1", "P2"] * 5))
        wait_for(lambda: all(row.attempts >= 1 for row in outbox_rows(store_url)[:2]))
    finally:
        engine.send_signal(signal.SIGKILL)
        engine.wait(30)
    assert all(row.state in ("PENDING", "SENDING") for row in outbox_rows(store_url))
    ehr.start()
    engine = engine_process(store_url, routes, port)
    try:
        wait_for(lambda: all(row.state == "SENT" for row in outbox_rows(store_url)))
    finally:
        engine.send_signal(signal.SIGTERM)
        engine.wait(30)
    assert_each_once_in_order(ehr, keys_by_patient(store_url))
    assert all(r["calls"] == 1 for r in ehr.received())


def test_alerts_reach_the_on_call_webhook_signed_once_per_window_and_resolved(
        sqlite_url: str, tmp_path: Path, ehr: MockEhr) -> None:
    import hashlib
    import hmac
    import json

    from engine.operator_actions import change_alert_state
    from tests.test_notify import receiving
    with receiving() as (receiver, base):
        text = route(ehr.endpoint) + f"""
  - kind: notify
    name: pager
    webhook: {{url: "{base}/hooks/vitals", secret: s3cret}}
    severities: [critical]
    suppress_minutes: 15
    retry: {{first_delay_seconds: 0.05, max_delay_seconds: 0.3}}
"""
        with running(sqlite_url, routes_for(tmp_path, text)) as engine:
            port = engine.listeners[0].port
            send_all(port, [oru("W-1", "P1", "20261121100000", [("heart_rate", 150)]),   # critical: paged
                            oru("W-2", "P2", "20261121100000", [("heart_rate", 125)])])  # warning: EHR only
            wait_for(lambda: len(receiver.received) == 1)
            [alert_id] = [row.alert_id for row in outbox_rows(sqlite_url) if row.destination == "pager"]
            store = SqlStore.from_url(sqlite_url)
            change_alert_state(store, alert_id, "resolve", "nurse.lee")
            store.close()
            send_all(port, [oru("W-3", "P1", "20261121100100", [("heart_rate", 151)])])  # again within the window
            wait_for(lambda: len(receiver.received) == 2)
            wait_for(lambda: all(row.state in ("SENT", "SUPPRESSED") for row in outbox_rows(sqlite_url)))
    raised, resolved = (json.loads(r.body) for r in receiver.received)
    assert (raised["event"], raised["alert"]["patient_id"]) == ("alert.raised", "P1")
    assert (resolved["event"], resolved["alert"]["resolved_by"]) == ("alert.resolved", "nurse.lee")
    first = receiver.received[0]
    timestamp = first.headers["X-VitalsStream-Timestamp"]
    expected = hmac.new(b"s3cret", f"{timestamp}.".encode() + first.body, hashlib.sha256).hexdigest()
    assert first.headers["X-VitalsStream-Signature"] == f"sha256={expected}"
    assert [row.state for row in outbox_rows(sqlite_url) if row.destination == "pager"] == [
        "SENT", "SENT", "SUPPRESSED"]


@pytest.mark.postgres
def test_two_engines_on_one_postgresql_database_send_each_record_once(
        postgres_url: str, tmp_path: Path, ehr: MockEhr) -> None:
    store = SqlStore.from_url(postgres_url)
    from engine.migrations import upgrade
    upgrade(store.engine)
    store.close()
    ports = [free_port(), free_port()]
    engines = []
    try:
        for number, port in enumerate(ports, 1):
            routes = routes_for(tmp_path / f"node-{number}", route(ehr.endpoint, port=port))
            engines.append(engine_process(postgres_url, routes, port, node=f"engine-{number}"))
        patients = [f"P{n % 4}" for n in range(24)]
        for number, port in enumerate(ports):  # each engine takes half the monitors
            send_all(port, [message.replace(b"|M-", f"|N{number}-".encode())
                            for message in messages_for(patients[number::2])])
        wait_for(lambda: len(outbox_rows(postgres_url)) == 24
                 and all(row.state == "SENT" for row in outbox_rows(postgres_url)))
    finally:
        for engine in engines:
            engine.send_signal(signal.SIGTERM)
            engine.wait(30)
    assert_each_once_in_order(ehr, keys_by_patient(postgres_url))
    assert all(r["calls"] == 1 for r in ehr.received())
    assert {row.claimed_by for row in outbox_rows(postgres_url)} == {None}
