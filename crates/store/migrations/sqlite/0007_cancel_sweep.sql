-- A CANCELLED or FAILED backfill may still hold pending items: cancel moves at most 10,000 of
-- them in its own transaction and the orchestrator sweeps the rest in batches, so a cancel of
-- a 1,000,000-item backfill answers at once. The sweep finds such backfills through the same
-- partial index as dispatch.
DROP INDEX backfills_dispatchable;
CREATE INDEX backfills_dispatchable ON backfills (id)
    WHERE state = 'RUNNING' OR in_flight_count > 0 OR (pending_count > 0 AND state IN ('CANCELLED', 'FAILED'));
