from pathlib import Path

import pytest

from engine.settings import PROJECT_ROOT, Settings


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.db_url == "sqlite:///var/vitalsstream.db"
    assert (settings.http_port, settings.mllp_port) == (8000, 2575)
    assert settings.routes_dir == PROJECT_ROOT / "routes"


def test_environment_overrides() -> None:
    settings = Settings.from_env({"VITALS_DB_URL": "postgresql+psycopg://h/db", "VITALS_HTTP_PORT": "9000",
                                  "VITALS_MLLP_PORT": "6661", "VITALS_ROUTES": "/etc/vitals/routes"})
    assert (settings.db_url, settings.http_port, settings.mllp_port) == ("postgresql+psycopg://h/db", 9000, 6661)
    assert settings.routes_dir == Path("/etc/vitals/routes")


@pytest.mark.parametrize("value", ["http", "0", "70000", "-1"])
def test_a_bad_port_is_named(value: str) -> None:
    with pytest.raises(ValueError, match="VITALS_MLLP_PORT"):
        Settings.from_env({"VITALS_MLLP_PORT": value})
