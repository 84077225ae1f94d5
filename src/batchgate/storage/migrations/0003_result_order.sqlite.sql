-- Results as they come, and retries that keep their lineage (docs/api.md, "Beyond the original").
-- The order parts committed in is their rowid on SQLite (one writer; a new row's rowid is above
-- every row's there): no column for it.

-- A retry: a child batch made of a parent's failed requests. retried_* count the parent's
-- results it replaces, by type, so the merged counts of a chain need no result read.
CREATE TABLE retries (
    child_id TEXT PRIMARY KEY,
    parent_id TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    retried_succeeded INTEGER NOT NULL,
    retried_errored INTEGER NOT NULL,
    retried_canceled INTEGER NOT NULL,
    retried_expired INTEGER NOT NULL
);
