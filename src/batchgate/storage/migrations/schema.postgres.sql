-- The whole PostgreSQL schema of this release, what a new database gets in one go. Every change
-- is a new numbered version beside this file as well (NNNN_name.postgres.sql); a test proves
-- that applying every version to an empty database yields exactly this schema.
-- The store's layout is described in storage/base.py. Batch ids sort by creation time only byte
-- by byte, hence COLLATE "C" on every batch id.

CREATE TABLE batches (
    id text COLLATE "C" PRIMARY KEY,
    owner text NOT NULL,
    status text NOT NULL CHECK (status IN ('in_progress', 'canceling', 'ended')),
    total integer NOT NULL,
    processing integer NOT NULL CHECK (processing >= 0),
    succeeded integer NOT NULL DEFAULT 0,
    errored integer NOT NULL DEFAULT 0,
    canceled integer NOT NULL DEFAULT 0,
    expired integer NOT NULL DEFAULT 0,
    created_at double precision NOT NULL,
    expires_at double precision NOT NULL,
    ended_at double precision,
    cancel_initiated_at double precision,
    archived_at double precision,
    -- The number of the batch's last committed part (results.commit_seq; version 3).
    parts_committed bigint NOT NULL DEFAULT 0,
    -- Labels ({"key": "value"} JSON), abort policy and cancel reason (JSON); NULL when none.
    metadata text,
    priority integer NOT NULL DEFAULT 0,
    abort_policy text,
    cancel_reason text,
    -- Where this batch's own events are delivered, besides the workspace's webhooks (version 6).
    webhook_url text,
    -- A request counted twice would break this, so the database itself refuses a duplicate.
    CHECK (processing + succeeded + errored + canceled + expired = total)
);
CREATE INDEX batches_by_owner ON batches (owner, id);
CREATE INDEX batches_by_owner_status ON batches (owner, status, id);
CREATE INDEX batches_canceling ON batches (id) WHERE status = 'canceling';
CREATE INDEX batches_unfinished ON batches (expires_at) WHERE status <> 'ended';
CREATE INDEX batches_to_archive ON batches (created_at)
    WHERE status = 'ended' AND archived_at IS NULL;

-- A chunk's requests never change once stored, its state changes often: two tables keep the
-- frequent updates small.
CREATE TABLE chunk_requests (
    batch_id text COLLATE "C" NOT NULL,
    chunk_no integer NOT NULL,
    custom_ids bytea NOT NULL,
    params bytea NOT NULL,
    -- A chunk of an OpenAI batch made from a clean input file has no params (empty): they are
    -- the bodies of its lines of file_id, bytes file_start to file_end (version 9).
    file_id text COLLATE "C",
    file_start bigint NOT NULL DEFAULT 0,
    file_end bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (batch_id, chunk_no)
);
CREATE INDEX chunk_requests_of_file ON chunk_requests (file_id) WHERE file_id IS NOT NULL;

-- state: 0 queued, 1 leased, 2 done. Lease renewals touch no indexed column; the free space
-- left in each page lets them update in place (HOT) instead of growing every index.
CREATE TABLE chunks (
    batch_id text COLLATE "C" NOT NULL,
    chunk_no integer NOT NULL,
    count integer NOT NULL,
    state smallint NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2)),
    urgent boolean NOT NULL DEFAULT false,
    lease_owner text,
    lease_expires double precision,
    priority integer NOT NULL DEFAULT 0,
    PRIMARY KEY (batch_id, chunk_no)
) WITH (fillfactor = 70);
CREATE INDEX chunks_queue ON chunks (urgent DESC, priority DESC, chunk_no, batch_id)
    WHERE state < 2;
CREATE INDEX chunks_leased ON chunks (lease_owner) WHERE state = 1;

CREATE TABLE results (
    batch_id text COLLATE "C" NOT NULL,
    chunk_no integer NOT NULL,
    part integer NOT NULL,
    indices bytea NOT NULL,
    lines bytea NOT NULL,
    -- The part's number in its batch's commit order: batches.parts_committed when it committed.
    commit_seq bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (batch_id, chunk_no, part)
);

-- lz4 compresses the request and result blobs several times faster than the default pglz, and
-- the database's CPU is what every worker shares. Servers built without lz4 keep pglz.
DO $$
BEGIN
    ALTER TABLE chunk_requests
        ALTER COLUMN custom_ids SET COMPRESSION lz4,
        ALTER COLUMN params SET COMPRESSION lz4;
    ALTER TABLE results
        ALTER COLUMN indices SET COMPRESSION lz4,
        ALTER COLUMN lines SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    NULL;
END
$$;

-- API keys kept in the database, each belonging to a workspace whose batches its keys share.
-- Only a SHA-256 of each key and its public prefix are stored, never the key.
CREATE TABLE api_keys (
    id text PRIMARY KEY,
    workspace text NOT NULL,
    prefix text NOT NULL UNIQUE,
    key_hash text NOT NULL,
    created_at double precision NOT NULL,
    revoked_at double precision,
    read_only boolean NOT NULL DEFAULT false  -- sees but cannot change (version 5)
);

-- A retry: a child batch made of a parent's failed requests (a batch has at most one). retried_*
-- count the parent's results it replaces, by type, so the merged counts need no result read.
CREATE TABLE retries (
    child_id text COLLATE "C" PRIMARY KEY,
    parent_id text COLLATE "C" NOT NULL UNIQUE,
    created_at double precision NOT NULL,
    retried_succeeded integer NOT NULL,
    retried_errored integer NOT NULL,
    retried_canceled integer NOT NULL,
    retried_expired integer NOT NULL
);

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
-- Events (version 6, docs/events.md): each batch's numbered events, written in the transaction
-- of the state change that causes them, and the webhooks that deliver them. The event table is
-- the outbox: a delivery row per matching endpoint is written with its event.

-- id: the event's number, in commit order within a workspace (the SSE `id:`).
CREATE TABLE batch_events (
    id bigserial PRIMARY KEY,
    owner text NOT NULL,
    batch_id text COLLATE "C" NOT NULL,
    seq integer NOT NULL,
    type text NOT NULL,
    created_at double precision NOT NULL,
    data text NOT NULL
);
CREATE INDEX batch_events_by_owner ON batch_events (owner, id);
CREATE UNIQUE INDEX batch_events_by_batch ON batch_events (batch_id, seq);
-- Housekeeping forgets old events (forget_events).
CREATE INDEX batch_events_by_age ON batch_events (created_at);

-- event_types: a JSON array of event types. A rotated secret signs beside the new one until
-- previous_secret_until.
CREATE TABLE webhooks (
    id text COLLATE "C" PRIMARY KEY,
    owner text NOT NULL,
    url text NOT NULL,
    event_types text NOT NULL,
    secret text NOT NULL,
    previous_secret text,
    previous_secret_until double precision,
    created_at double precision NOT NULL,
    disabled_at double precision,
    disabled_reason text
);
CREATE INDEX webhooks_by_owner ON webhooks (owner, id);

-- The secret that signs deliveries to a batch's own webhook_url, one per workspace.
CREATE TABLE webhook_secrets (
    owner text PRIMARY KEY,
    secret text NOT NULL
);

-- One event to one endpoint (webhook_id NULL: the batch's webhook_url), leased by an engine
-- while it attempts it. attempt_log: a JSON array of the latest attempts.
CREATE TABLE webhook_deliveries (
    id bigserial PRIMARY KEY,
    owner text NOT NULL,
    webhook_id text,
    url text NOT NULL,
    event_id bigint NOT NULL,
    state text NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at double precision,
    lease_owner text,
    lease_expires double precision,
    attempt_log text NOT NULL DEFAULT '[]',
    created_at double precision NOT NULL,
    delivered_at double precision
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_of_webhook ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_of_event ON webhook_deliveries (event_id);

-- A file of a workspace. Uploaded files keep their bytes in file_pieces; a batch's output and
-- error files (purpose batch_output) have none: they are made from its results as they are read.
CREATE TABLE files (
    id text COLLATE "C" PRIMARY KEY,
    owner text NOT NULL,
    purpose text NOT NULL,
    filename text NOT NULL,
    bytes bigint NOT NULL,
    created_at double precision NOT NULL,
    expires_at double precision,
    -- For a batch's output ('output') or error ('error') file: that batch.
    batch_id text COLLATE "C",
    batch_lines text
);
CREATE INDEX files_by_owner ON files (owner, id);
-- The files that expire, soonest first: the engine's housekeeping deletes them (version 8).
CREATE INDEX files_expiring ON files (expires_at) WHERE expires_at IS NOT NULL;

-- An uploaded file's bytes, in pieces of up to a few MB, so that none is read whole.
CREATE TABLE file_pieces (
    file_id text COLLATE "C" NOT NULL,
    piece integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (file_id, piece)
);

-- What the upload of a clean batch input file (every line a request for one url and one model)
-- found of its lines: its custom_ids (a JSON array) and each one's line's byte offset (a JSON
-- array, then the file's size); its pieces are piece_bytes long, but the last. Kept with the
-- pieces while a chunk refers to them (version 9).
CREATE TABLE input_file_lines (
    file_id text COLLATE "C" PRIMARY KEY,
    piece_bytes integer NOT NULL,
    url text NOT NULL,
    model text NOT NULL,
    custom_ids bytea NOT NULL,
    starts bytea NOT NULL
);

-- An OpenAI batch: its `batches` row has the same id, except for one whose input file failed
-- validation, which has none (its errors are here). output/error files are recorded once made.
CREATE TABLE openai_batches (
    id text COLLATE "C" PRIMARY KEY,
    owner text NOT NULL,
    endpoint text NOT NULL,
    input_file_id text NOT NULL,
    completion_window text NOT NULL,
    metadata text,
    created_at double precision NOT NULL,
    failed_at double precision,
    errors text,
    files_made boolean NOT NULL DEFAULT false,
    output_file_id text,
    error_file_id text,
    -- The one model of its input file (version 8).
    model text,
    -- output_expires_after: its output and error files expire this long after they are made.
    output_expires_seconds integer
);
CREATE INDEX openai_batches_by_owner ON openai_batches (owner, id);
