-- Issue 23, adaptive concurrency: the in-flight limit the orchestrator has adapted a backfill to
-- (AIMD between 1 and max_in_flight); NULL while it is max_in_flight.
ALTER TABLE backfills ADD COLUMN effective_max_in_flight BIGINT;
