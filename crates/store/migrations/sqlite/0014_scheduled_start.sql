-- Issue 21, scheduled start: a backfill dispatches nothing before start_at (epoch ms; NULL:
-- at once). It is RUNNING meanwhile, its windows closed until then.
ALTER TABLE backfills ADD COLUMN start_at BIGINT;
