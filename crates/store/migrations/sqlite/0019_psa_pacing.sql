-- Issue 23, fairness between an MSP's clients: each item carries the PSA company it belongs to
-- (NULL when the PSA did not say, as for an explicit id list) and its rank among that company's
-- items of the backfill (0, 1, 2, … in snapshot order). Claims take pending items in
-- (company_rank, ord) order, which is a round-robin across companies: every company's first
-- item, then every company's second, so a client with 40,000 tickets does not hold back one
-- with 200. `backfill_companies` counts each company's items as pages are appended, so a rank
-- costs one keyed upsert per company per page.
ALTER TABLE backfill_items ADD COLUMN company TEXT;
ALTER TABLE backfill_items ADD COLUMN company_rank BIGINT NOT NULL DEFAULT 0;
-- The claim's index (migration 0009) becomes this one, in the claim's new order. It replaces the
-- old one rather than joining it: every item a claim takes leaves each index on pending items, so
-- two of them cost every claim a second index update. Cancel's sweep in `ord` order reads
-- `backfill_items_status` (backfill_id, status, ord).
DROP INDEX backfill_items_pending;
CREATE INDEX backfill_items_pending ON backfill_items (backfill_id, company_rank, ord) WHERE status = 'pending';
CREATE TABLE backfill_companies (
    backfill_id TEXT NOT NULL,
    company     TEXT NOT NULL,
    items       BIGINT NOT NULL,
    PRIMARY KEY (backfill_id, company)
);
-- At most this many of one company's items in flight at once (NULL: no cap below max_in_flight),
-- and the companies' change freezes (JSON: company id -> dates and weekly windows in the
-- backfill's timezone) during which their items are not claimed.
ALTER TABLE backfills ADD COLUMN max_in_flight_per_company BIGINT;
ALTER TABLE backfills ADD COLUMN company_blackouts TEXT;

-- Issue 23, one request budget per integration shared by every replica (its settings,
-- `requests_per_hour` and `backfill_share`, are members of the integration's config): the token
-- bucket in thousandths of a request as of `budget_at`, and the requests granted since
-- `budget_hour` (the start of the hour they were granted in).
ALTER TABLE integrations ADD COLUMN budget_millis BIGINT NOT NULL DEFAULT 0;
ALTER TABLE integrations ADD COLUMN budget_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE integrations ADD COLUMN budget_hour BIGINT NOT NULL DEFAULT 0;
ALTER TABLE integrations ADD COLUMN budget_used BIGINT NOT NULL DEFAULT 0;
