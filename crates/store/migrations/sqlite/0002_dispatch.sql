-- Dispatch state: leases on in-flight items, retry schedule, circuit breaker.
ALTER TABLE backfill_items ADD COLUMN next_attempt_at INTEGER;
ALTER TABLE backfill_items ADD COLUMN lease_owner TEXT;
ALTER TABLE backfill_items ADD COLUMN lease_expires_at INTEGER;
ALTER TABLE backfills ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
CREATE INDEX backfill_items_lease ON backfill_items (lease_expires_at) WHERE status = 'in_flight';
CREATE INDEX backfills_state ON backfills (state);
