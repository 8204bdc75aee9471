-- Retention empties the payload of outbox rows that were delivered (SENT) or held back (SUPPRESSED) once
-- they are older than their route's retention age: the row stays (the audit trail), its payload becomes ''
-- and payload_pruned_at says when. ix_outbox_payload_kept holds exactly the rows still to be pruned some
-- day, per route and oldest first, so a run reads only what aged since the last one.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS payload_pruned_at TIMESTAMP;
CREATE INDEX IF NOT EXISTS ix_outbox_payload_kept ON outbox (route, created_at)
    WHERE state IN ('SENT', 'SUPPRESSED') AND payload_pruned_at IS NULL;
