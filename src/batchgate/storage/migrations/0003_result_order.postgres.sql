-- Results as they come, and retries that keep their lineage (docs/api.md, "Beyond the original").
--
-- Each part of a batch gets the next number of its batch as it commits: batches.parts_committed
-- is the last one given, and results.commit_seq the part's. The number is taken under the batch
-- row's lock, so a batch's parts become visible in the order of their numbers, and a follower
-- that has read up to N misses nothing by asking for the parts after N. Parts committed before
-- this version keep 0, read first.
ALTER TABLE batches ADD COLUMN parts_committed bigint NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN commit_seq bigint NOT NULL DEFAULT 0;

-- A retry: a child batch made of a parent's failed requests. retried_* count the parent's
-- results it replaces, by type, so the merged counts of a chain need no result read.
CREATE TABLE retries (
    child_id text COLLATE "C" PRIMARY KEY,
    parent_id text COLLATE "C" NOT NULL UNIQUE,
    created_at double precision NOT NULL,
    retried_succeeded integer NOT NULL,
    retried_errored integer NOT NULL,
    retried_canceled integer NOT NULL,
    retried_expired integer NOT NULL
);
