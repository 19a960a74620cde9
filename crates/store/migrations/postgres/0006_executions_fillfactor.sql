-- Half of each executions page left free: every execution is inserted once (running) and
-- updated once (its outcome), and at fillfactor 85 only 28% of those updates found room on
-- their page (`pg_stat_user_tables` after 100,000 items); the rest wrote a new entry into all
-- four indexes. With room for the one new version of every row on its page, the update is HOT.
-- The table is larger (about twice the heap for the rows of one page), its indexes are not.
ALTER TABLE executions SET (fillfactor = 50);
