-- Control and accounting (docs/api.md, "Beyond the original"): labels, priority, abort policies
-- and why a batch was canceled on the batch; labels again in a table of their own, for the
-- list filters; token usage per batch and model, committed with the parts; idempotency keys.

ALTER TABLE batches ADD COLUMN metadata TEXT;
ALTER TABLE batches ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE batches ADD COLUMN abort_policy TEXT;
ALTER TABLE batches ADD COLUMN cancel_reason TEXT;
CREATE INDEX batches_by_owner_status ON batches (owner, status, id);

-- Higher-priority chunks are leased first; urgent ones (canceling, expired) before them all.
ALTER TABLE chunks ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
DROP INDEX chunks_queue;
CREATE INDEX chunks_queue ON chunks (urgent DESC, priority DESC, chunk_no, batch_id)
    WHERE state < 2;

-- One row per label of a batch: `metadata[key]=value` filters walk this index newest first.
CREATE TABLE batch_labels (
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    PRIMARY KEY (owner, key, value, batch_id)
) WITHOUT ROWID;
CREATE INDEX batch_labels_of_batch ON batch_labels (batch_id);

-- Tokens of the succeeded requests of a batch, per model, added with each part.
CREATE TABLE batch_usage (
    batch_id TEXT NOT NULL,
    model TEXT NOT NULL,
    requests INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cache_creation_input_tokens INTEGER NOT NULL,
    cache_read_input_tokens INTEGER NOT NULL,
    PRIMARY KEY (batch_id, model)
) WITHOUT ROWID;

-- Idempotency-Key of creates, per workspace: the digest of the body it came with, and the batch
-- it created (NULL while that create is being stored).
CREATE TABLE idempotency_keys (
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    digest TEXT NOT NULL,
    batch_id TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (owner, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
