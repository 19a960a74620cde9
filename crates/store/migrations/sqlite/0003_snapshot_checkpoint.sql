-- Where the PSA enumeration of a backfill's snapshot resumes (e.g. {"last_id": 1234}).
ALTER TABLE backfills ADD COLUMN snapshot_checkpoint TEXT;
