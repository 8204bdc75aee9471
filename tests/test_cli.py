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
