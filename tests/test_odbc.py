"""The ODBC stack the SQL Server path stands on (unixODBC + pyodbc), checked against a real server.

There is no SQL Server here; PostgreSQL's ODBC driver proves that pyodbc, the driver manager and a driver
work together on this machine, with parameters and our stored function.
"""
import pyodbc
import pytest
from sqlalchemy.engine import make_url

from adapters.sql_store import SqlStore
from engine.channel import Channel, Route
from engine.migrations import upgrade
from tests.messages import fixture
from tests.servers import unavailable

pytestmark = pytest.mark.postgres


def test_pyodbc_reads_what_the_engine_stored(postgres_url: str) -> None:
    store = SqlStore.from_url(postgres_url)
    upgrade(store.engine)
    Channel(store).dispatch(fixture("multi_patient_v24.hl7"), Route())
    store.close()
    driver = next((d for d in pyodbc.drivers() if "PostgreSQL Unicode" in d), None)
    if driver is None:
        unavailable("the PostgreSQL ODBC driver (Debian odbc-postgresql) is not installed")
    url = make_url(postgres_url)
    connection = pyodbc.connect(f"DRIVER={{{driver}}};SERVER={url.host};PORT={url.port};DATABASE={url.database};"
                                f"UID={url.username};PWD={url.password or ''}", timeout=10)
    with connection:
        rows = connection.execute("SELECT vital, severity FROM alerts WHERE patient_id = ? ORDER BY vital",
                                  "W3-2").fetchall()
        assert [tuple(r) for r in rows] == [("heart_rate", "critical"), ("resp_rate", "critical")]
        # Evaluating the message again (never done by the engine) updates its three open alerts.
        assert connection.execute("SELECT evaluate_alerts(CAST(? AS BIGINT[]))", "{1}").fetchval() == 3
        connection.rollback()
