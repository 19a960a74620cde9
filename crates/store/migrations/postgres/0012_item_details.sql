-- What a snapshot's PSA page said each entity is (a ticket's summary; issue 18: "items show no
-- ticket number or summary"), beside the items rather than in them: claims and settlements
-- rewrite item rows all the time, and a wider row would cost every one of them. Only a page
-- of the items list joins it.
CREATE TABLE backfill_item_details (
    backfill_id TEXT COLLATE "C" NOT NULL REFERENCES backfills(id) ON DELETE CASCADE,
    ord         BIGINT NOT NULL,
    summary     TEXT NOT NULL,
    PRIMARY KEY (backfill_id, ord)
);
