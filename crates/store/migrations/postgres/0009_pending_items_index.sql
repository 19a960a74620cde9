-- The items a claim takes (a backfill's pending items in order) get an index of their own.
-- Through `backfill_items_status` or the primary key, the plan depended on the statistics:
-- prepared while a fresh database's table was nearly empty it fetched and sorted every pending
-- item to take 100 (a bitmap scan); analysed while all items were pending it walked the
-- primary key past every item already dispatched. Either way a claim grew with the backfill
-- (12–48 ms at 100,000 items). This index holds only pending items, in claim order, so it is
-- the smallest path under any statistics, and it costs dispatch nothing: an item leaving
-- `pending` adds no entry to it. Cancel and its sweep read the same rows.
CREATE INDEX backfill_items_pending ON backfill_items (backfill_id, ord) WHERE status = 'pending';
