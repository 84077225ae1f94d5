-- Control and accounting (docs/api.md, "Beyond the original"): labels, priority, abort policies
-- and why a batch was canceled on the batch; labels again in a table of their own, for the
-- list filters; token usage per batch and model, committed with the parts; idempotency keys.

ALTER TABLE batches
    ADD COLUMN metadata text,
    ADD COLUMN priority integer NOT NULL DEFAULT 0,
    ADD COLUMN abort_policy text,
    ADD COLUMN cancel_reason text;
CREATE INDEX batches_by_owner_status ON batches (owner, status, id);

-- Higher-priority chunks are leased first; urgent ones (canceling, expired) before them all.
ALTER TABLE chunks ADD COLUMN priority integer NOT NULL DEFAULT 0;
DROP INDEX chunks_queue;
CREATE INDEX chunks_queue ON chunks (urgent DESC, priority DESC, chunk_no, batch_id)
    WHERE state < 2;

-- One row per label of a batch: `metadata[key]=value` filters walk this index newest first.
CREATE TABLE batch_labels (
    owner text NOT NULL,
    key text NOT NULL,
    value text NOT NULL,
    batch_id text COLLATE "C" NOT NULL,
    PRIMARY KEY (owner, key, value, batch_id)
);
CREATE INDEX batch_labels_of_batch ON batch_labels (batch_id);

-- Tokens of the succeeded requests of a batch, per model, added with each part.
CREATE TABLE batch_usage (
    batch_id text COLLATE "C" NOT NULL,
    model text NOT NULL,
    requests bigint NOT NULL,
    input_tokens bigint NOT NULL,
    output_tokens bigint NOT NULL,
    cache_creation_input_tokens bigint NOT NULL,
    cache_read_input_tokens bigint NOT NULL,
    PRIMARY KEY (batch_id, model)
);

-- Idempotency-Key of creates, per workspace: the digest of the body it came with, and the batch
-- it created (NULL while that create is being stored).
CREATE TABLE idempotency_keys (
    owner text NOT NULL,
    key text NOT NULL,
    digest text NOT NULL,
    batch_id text COLLATE "C",
    created_at double precision NOT NULL,
    PRIMARY KEY (owner, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
