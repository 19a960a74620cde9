-- Issue 22, failure triage: the causes (error signatures and failure kinds, JSON) a rerun-failed
-- child was made from; NULL for a rerun of every failure and for every other backfill.
ALTER TABLE backfills ADD COLUMN rerun_causes TEXT;
