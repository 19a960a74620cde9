-- Issue 21, operator control.
-- Why a RUNNING backfill paused itself (trial_complete, budget_reached, allowance_exhausted,
-- circuit_breaker) or `operator` for a pause signal; NULL while it runs.
ALTER TABLE backfills ADD COLUMN pause_reason TEXT;
-- A budget cap: claims never start an execution that could take the backfill's credits over it.
ALTER TABLE backfills ADD COLUMN max_credits BIGINT;
-- A trial run: this many entities first, spread over the snapshot; its summary (JSON) once
-- they have settled. Items outside the sample are held until the operator continues.
ALTER TABLE backfills ADD COLUMN trial_sample_size BIGINT;
ALTER TABLE backfills ADD COLUMN trial_summary TEXT;
ALTER TABLE backfill_items ADD COLUMN held BOOLEAN NOT NULL DEFAULT FALSE;
-- Measured throughput for the ETA: settled items and open seconds, both decayed
-- exponentially (an EWMA of the rate), as of rate_at (epoch ms; NULL: nothing measured yet).
ALTER TABLE backfills ADD COLUMN rate_items DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE backfills ADD COLUMN rate_seconds DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE backfills ADD COLUMN rate_at BIGINT;
