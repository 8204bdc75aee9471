"""The vitalsstream command as an integration engineer uses it."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.messages import FIXTURES

ROOT = Path(__file__).resolve().parent.parent


def vitalsstream(*args: str, db_url: str = "", cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VITALS_DB_URL": db_url} if db_url else dict(os.environ)
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd)


def test_transform_prints_json_lines_with_the_documented_keys() -> None:
    result = vitalsstream("transform", str(FIXTURES / "pcd01_nibp.hl7"), str(FIXTURES / "glucometer_v23_mgdl.hl7"))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 5
    for line in lines:
        assert {"patient_id", "device_id", "vital", "value", "unit", "observed_at", "status", "source_code",
                "source_system"} <= set(line)
        assert line["observed_at"].endswith("Z")


def test_transform_of_an_unmappable_message_prints_the_error_and_fails() -> None:
    result = vitalsstream("transform", str(FIXTURES / "bad" / "nonnumeric_value.hl7"))
    assert result.returncode == 1
    assert "102 Data type error at OBX[1]-5" in result.stderr


def test_transform_applies_the_time_zone_option() -> None:
    result = vitalsstream("transform", "--tz", "America/New_York", str(FIXTURES / "multi_patient_v24.hl7"))
    assert json.loads(result.stdout.splitlines()[0])["observed_at"] == "2024-09-11T01:55:00Z"
    assert vitalsstream("transform", "--tz", "Mars/Olympus", str(FIXTURES / "pcd01_nibp.hl7")).returncode == 2


def test_ingest_stores_and_prints_the_whole_ack(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'v.db'}"
    result = vitalsstream("ingest", str(FIXTURES / "loinc_vitals_v251.hl7"), str(FIXTURES / "multi_patient_v24.hl7"),
                          db_url=url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("MSA|AA|") == 2 and "MSH|^~\\&|EHR|HOSP|VITALSCART|WARD7|" in result.stdout
    with create_engine(url).connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM device_readings")).scalar_one() == 11
        assert conn.execute(text("SELECT COUNT(*) FROM alerts")).scalar_one() == 3


def test_ingest_of_a_bad_message_prints_the_nak_and_fails(tmp_path: Path) -> None:
    result = vitalsstream("ingest", str(FIXTURES / "bad" / "unknown_unit.hl7"), db_url=f"sqlite:///{tmp_path / 'v.db'}")
    assert result.returncode == 1
    assert "MSA|AE|BAD-2" in result.stdout and "ERR||OBX^1^6|103^Table value not found^HL70357|E" in result.stdout


def test_default_database_is_var_vitalsstream_db(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "VITALS_DB_URL"}
    result = subprocess.run([sys.executable, "-m", "engine.cli", "ingest", str(FIXTURES / "pcd01_nibp.hl7")],
                            capture_output=True, text=True, env={**env, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "var" / "vitalsstream.db").exists()


@pytest.mark.postgres
def test_db_upgrade_is_harmless_to_repeat(postgres_url: str) -> None:
    first = vitalsstream("db", "upgrade", db_url=postgres_url)
    again = vitalsstream("db", "upgrade", db_url=postgres_url)
    assert (first.returncode, again.returncode) == (0, 0), first.stderr + again.stderr
    assert first.stdout.startswith("applied 1, 2, 3") and again.stdout.strip() == "database is up to date"


def test_outbox_commands_act_on_the_queue(sqlite_url: str) -> None:
    from adapters.sql_store import SqlStore
    from engine.channel import Channel, Route
    from engine.migrations import upgrade
    from engine.outbox_rows import OutboxTarget
    from tests.messages import oru
    store = SqlStore.from_url(sqlite_url)
    upgrade(store.engine)
    Channel(store).dispatch(oru("C-1", "P1", "20261121100000", [("heart_rate", 70)]),
                            Route(name="ward", outbox=(OutboxTarget("ehr", readings=True, alerts=False),)))
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE outbox SET state = 'DEAD', last_error = 'Client fault: unknown patient'"))
    store.close()
    listed = vitalsstream("outbox", "list", "--state", "DEAD", db_url=sqlite_url)
    assert listed.returncode == 0 and "ehr" in listed.stdout and "Client fault: unknown patient" in listed.stdout
    assert vitalsstream("outbox", "pause", "ehr", "--by", "ops.kim", db_url=sqlite_url).stdout == "ehr paused\n"
    assert vitalsstream("outbox", "resume", "ehr", db_url=sqlite_url).stdout == "ehr resumed\n"
    again = vitalsstream("outbox", "retry", "--destination", "ehr", db_url=sqlite_url)
    assert again.stdout == "1 dead letters of ehr queued again\n"
    missing = vitalsstream("outbox", "retry", "999", db_url=sqlite_url)
    assert missing.returncode == 1 and "there is no outbox row 999" in missing.stderr
    engine = create_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT state FROM outbox")).scalar_one() == "PENDING"
        paused, by = conn.execute(text("SELECT paused, changed_by FROM destinations")).one()
    engine.dispose()
    assert paused == 0 and by  # resumed, by whoever ran the command


def test_housekeeping_runs_one_job_under_its_lease(sqlite_url: str) -> None:
    done = vitalsstream("housekeeping", "run", "outbox_sweep", db_url=sqlite_url)
    assert done.returncode == 0 and done.stdout.startswith("outbox_sweep: ")
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:  # a running engine holds the stale-device lease
        conn.execute(text("INSERT INTO job_leases (name, holder, acquired_at, expires_at) "
                          "VALUES ('stale_devices', 'engine-1', '2026-01-01 00:00:00', '2999-01-01 00:00:00')"))
    engine.dispose()
    refused = vitalsstream("housekeeping", "run", "stale_devices", db_url=sqlite_url)
    assert refused.returncode == 1 and "another node holds its lease" in refused.stderr


def test_outbox_commands_refuse_a_destination_nobody_knows(sqlite_url: str) -> None:
    typo = vitalsstream("outbox", "pause", "eh", db_url=sqlite_url)
    assert typo.returncode == 1 and "there is no destination 'eh'" in typo.stderr
    configured = vitalsstream("outbox", "pause", "ehr", db_url=sqlite_url)  # routes/default.yaml names it
    assert configured.returncode == 0, configured.stderr


def test_bad_settings_and_a_taken_port_are_one_line_errors(tmp_path: Path) -> None:
    bad = subprocess.run([sys.executable, "-m", "engine.cli", "run"], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "VITALS_HTTP_PORT": "eighty"}, timeout=60)
    assert bad.returncode == 2 and "VITALS_HTTP_PORT='eighty' is not a TCP port" in bad.stderr
    assert "Traceback" not in bad.stderr
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = subprocess.run([sys.executable, "-m", "engine.cli", "run"], capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "VITALS_MLLP_PORT": str(port), "VITALS_HTTP_PORT": str(port + 1),
                                   "VITALS_DB_URL": f"sqlite:///{tmp_path / 'v.db'}"}, timeout=60)
    assert busy.returncode == 1 and "could not start:" in busy.stderr and "Traceback" not in busy.stderr
