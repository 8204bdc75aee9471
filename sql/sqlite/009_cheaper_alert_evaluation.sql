-- Readings by patient and time: a message's readings share patient and observation time, so they land on one
-- leaf page of this index (the old order, patient then vital, put each vital of a message on a page of its
-- own). On SQLite every page a commit touches is written to the WAL again: measured with 24 beds and 16
-- messages a commit, 193 -> 86 us of COMMIT a message. Queries by patient and vital read the patient's time
-- range and skip the other vitals in the index; value and message_id keep the alert windows index-only.
DROP INDEX IF EXISTS ix_readings_patient;
CREATE INDEX IF NOT EXISTS ix_readings_patient_time ON device_readings (patient_id, observed_at, vital, value, message_id);
-- The evaluation statements themselves are sql/sqlite/evaluate_alerts.sql (generated from PostgreSQL's 009).
