"""SQLAlchemy Core descriptions of the tables the sql/ scripts create, for the queries the engine issues.

The DDL itself lives in sql/<dialect>/*.sql so a DBA can read and run it by hand; a test checks that
every column named here exists in the migrated schema of each dialect. All times are UTC, without zone.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Float, Integer, MetaData, String, Table, Text

metadata = MetaData()

messages = Table(
    "messages", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("route", String(100), nullable=False),
    Column("control_id", String(200), nullable=False),
    Column("sending_application", String(227), nullable=False),
    Column("sending_facility", String(227), nullable=False),
    Column("message_type", String(20), nullable=False),
    Column("version", String(10), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("raw", Text),
    Column("peer", String(200)),
    Column("status", String(20), nullable=False),
    Column("ack_code", String(2)),
    Column("ack", Text),
    Column("error", Text),
    Column("reading_count", Integer, nullable=False),
    Column("duplicate_of", BigInteger),
    Column("reprocess_of", BigInteger),
    Column("received_at", DateTime, nullable=False),
    Column("processed_at", DateTime),
)

device_readings = Table(
    "device_readings", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("message_id", BigInteger, nullable=False),
    Column("patient_id", String(100), nullable=False),
    Column("device_id", String(200), nullable=False),
    Column("vital", String(30), nullable=False),
    Column("value", Float, nullable=False),
    Column("unit", String(20), nullable=False),
    Column("observed_at", DateTime, nullable=False),
    Column("status", String(1), nullable=False),
    Column("source_system", String(50), nullable=False),
    Column("source_code", String(100), nullable=False),
    Column("source_value", String(100), nullable=False),
    Column("source_unit", String(100), nullable=False),
    Column("comparator", String(2), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

alert_thresholds = Table(
    "alert_thresholds", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("vital", String(30), nullable=False),
    Column("patient_id", String(100)),
    Column("device_id", String(200)),
    Column("unit", String(20), nullable=False),
    Column("critical_low", Float),
    Column("warning_low", Float),
    Column("warning_high", Float),
    Column("critical_high", Float),
    Column("updated_at", DateTime, nullable=False),
)

alerts = Table(
    "alerts", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("reading_id", BigInteger, nullable=False),
    Column("last_reading_id", BigInteger, nullable=False),
    Column("patient_id", String(100), nullable=False),
    Column("device_id", String(200), nullable=False),
    Column("vital", String(30), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("state", String(20), nullable=False),
    Column("message", String(400), nullable=False),
    Column("value", Float, nullable=False),
    Column("last_value", Float, nullable=False),
    Column("occurrences", Integer, nullable=False),
    Column("first_seen_at", DateTime, nullable=False),
    Column("last_seen_at", DateTime, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("acknowledged_at", DateTime),
    Column("acknowledged_by", String(100)),
    Column("resolved_at", DateTime),
    Column("resolved_by", String(100)),
)

schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("checksum", String(64), nullable=False),
    Column("applied_at", DateTime, nullable=False),
)

outbox = Table(
    "outbox", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("destination", String(100), nullable=False),
    Column("route", String(100), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("idempotency_key", String(200), nullable=False),
    Column("message_id", BigInteger),
    Column("alert_id", BigInteger),
    Column("patient_id", String(100), nullable=False),
    Column("payload", Text, nullable=False),
    Column("state", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime, nullable=False),
    Column("claimed_by", String(100)),
    Column("claimed_until", DateTime),
    Column("remote_id", String(200)),
    Column("last_error", Text),
    Column("created_at", DateTime, nullable=False),
    Column("sent_at", DateTime),
    Column("payload_pruned_at", DateTime),  # retention emptied the payload (''), see engine/jobs/retention.py
)

outbox_attempts = Table(
    "outbox_attempts", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("outbox_id", BigInteger, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("node", String(100), nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("outcome", String(10), nullable=False),
    Column("remote_id", String(200)),
    Column("error", Text),
)

destinations = Table(
    "destinations", metadata,
    Column("name", String(100), primary_key=True),
    Column("paused", Boolean, nullable=False),
    Column("changed_at", DateTime, nullable=False),
    Column("changed_by", String(100), nullable=False),
)

# --- housekeeping (sql/*/005_housekeeping.sql, engine/scheduler.py) -----------------------------------------

job_leases = Table(
    "job_leases", metadata,
    Column("name", String(100), primary_key=True),
    Column("holder", String(100), nullable=False),
    Column("acquired_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
)

job_state = Table(
    "job_state", metadata,
    Column("name", String(200), primary_key=True),
    Column("value", String(200), nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

incidents = Table(
    "incidents", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("kind", String(30), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("state", String(20), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("summary", String(400), nullable=False),
    Column("details", Text),
    Column("opened_at", DateTime, nullable=False),
    Column("last_seen_at", DateTime, nullable=False),
    Column("occurrences", Integer, nullable=False),
    Column("acknowledged_at", DateTime),
    Column("acknowledged_by", String(100)),
    Column("resolved_at", DateTime),
    Column("resolved_by", String(100)),
)

device_status = Table(
    "device_status", metadata,
    Column("device_id", String(200), primary_key=True),
    Column("route", String(100), nullable=False),
    Column("patient_id", String(100), nullable=False),
    Column("last_seen_at", DateTime, nullable=False),
    Column("expected_interval_seconds", Integer, nullable=False),
    Column("offline_since", DateTime),
)

reconciliation = Table(
    "reconciliation", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("route", String(100), nullable=False),
    Column("hour_start", DateTime, nullable=False),
    Column("received", Integer, nullable=False),
    Column("stored", Integer, nullable=False),
    Column("forwarded", Integer, nullable=False),
    Column("confirmed", Integer, nullable=False),
    Column("missing", Integer, nullable=False),
    Column("delayed", Integer, nullable=False),
    Column("duplicated", Integer, nullable=False),
    Column("computed_at", DateTime, nullable=False),
)
