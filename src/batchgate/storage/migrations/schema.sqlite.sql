-- The whole SQLite schema of this release, what a new database gets in one go. Every change
-- is a new numbered version beside this file as well (NNNN_name.sqlite.sql); a test proves that
-- applying every version to an empty database yields exactly this schema.
-- The store's layout is described in storage/base.py.

CREATE TABLE batches (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    status TEXT NOT NULL,
    total INTEGER NOT NULL,
    processing INTEGER NOT NULL,
    succeeded INTEGER NOT NULL DEFAULT 0,
    errored INTEGER NOT NULL DEFAULT 0,
    canceled INTEGER NOT NULL DEFAULT 0,
    expired INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    ended_at REAL,
    cancel_initiated_at REAL,
    archived_at REAL,
    -- Labels ({"key": "value"} JSON), abort policy and cancel reason (JSON); NULL when none.
    metadata TEXT,
    priority INTEGER NOT NULL DEFAULT 0,
    abort_policy TEXT,
    cancel_reason TEXT,
    -- Where this batch's own events are delivered, besides the workspace's webhooks (version 6).
    webhook_url TEXT
) WITHOUT ROWID;
CREATE INDEX batches_by_owner ON batches (owner, id);
CREATE INDEX batches_by_owner_status ON batches (owner, status, id);
CREATE INDEX batches_unfinished ON batches (status) WHERE status != 'ended';
CREATE INDEX batches_by_status ON batches (status);

-- The requests of a chunk never change once stored; its state changes often. They live in two
-- tables because SQLite rewrites a whole row, blobs included, on every update.
CREATE TABLE chunk_requests (
    batch_id TEXT NOT NULL,
    chunk_no INTEGER NOT NULL,
    custom_ids BLOB NOT NULL,
    params BLOB NOT NULL,
    -- A chunk of an OpenAI batch made from a clean input file has no params (empty): they are
    -- the bodies of its lines of file_id, bytes file_start to file_end (version 9).
    file_id TEXT,
    file_start INTEGER NOT NULL DEFAULT 0,
    file_end INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (batch_id, chunk_no)
);
CREATE INDEX chunk_requests_of_file ON chunk_requests (file_id) WHERE file_id IS NOT NULL;

-- state: 0 queued, 1 leased, 2 done. Queued chunks are taken highest priority first, then lowest
-- chunk_no first across all batches, so a small batch never waits behind the whole of a large one.
CREATE TABLE chunks (
    batch_id TEXT NOT NULL,
    chunk_no INTEGER NOT NULL,
    count INTEGER NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    urgent INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires REAL,
    priority INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (batch_id, chunk_no)
) WITHOUT ROWID;
CREATE INDEX chunks_queue ON chunks (urgent DESC, priority DESC, chunk_no, batch_id)
    WHERE state < 2;

-- The order parts committed in is their rowid: one writer, and a new row's rowid is above every
-- row's there.
CREATE TABLE results (
    batch_id TEXT NOT NULL,
    chunk_no INTEGER NOT NULL,
    part INTEGER NOT NULL,
    indices BLOB NOT NULL,
    lines BLOB NOT NULL,
    PRIMARY KEY (batch_id, chunk_no, part)
);

-- API keys: a SHA-256 of each key and its public prefix, never the key (storage/base.py).
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    workspace TEXT NOT NULL,
    prefix TEXT NOT NULL UNIQUE,
    key_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL,
    read_only INTEGER NOT NULL DEFAULT 0  -- sees but cannot change (version 5)
);

-- A retry: a child batch made of a parent's failed requests (a batch has at most one). retried_*
-- count the parent's results it replaces, by type, so the merged counts need no result read.
CREATE TABLE retries (
    child_id TEXT PRIMARY KEY,
    parent_id TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    retried_succeeded INTEGER NOT NULL,
    retried_errored INTEGER NOT NULL,
    retried_canceled INTEGER NOT NULL,
    retried_expired INTEGER NOT NULL
);

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
-- Events (version 6, docs/events.md): each batch's numbered events, written in the transaction
-- of the state change that causes them, and the webhooks that deliver them. The event table is
-- the outbox: a delivery row per matching endpoint is written with its event.

-- id: the event's number, in commit order within a workspace (the SSE `id:`).
CREATE TABLE batch_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    created_at REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX batch_events_by_owner ON batch_events (owner, id);
CREATE UNIQUE INDEX batch_events_by_batch ON batch_events (batch_id, seq);
-- Housekeeping forgets old events (forget_events).
CREATE INDEX batch_events_by_age ON batch_events (created_at);

-- event_types: a JSON array of event types. A rotated secret signs beside the new one until
-- previous_secret_until.
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    url TEXT NOT NULL,
    event_types TEXT NOT NULL,
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_secret_until REAL,
    created_at REAL NOT NULL,
    disabled_at REAL,
    disabled_reason TEXT
);
CREATE INDEX webhooks_by_owner ON webhooks (owner, id);

-- The secret that signs deliveries to a batch's own webhook_url, one per workspace.
CREATE TABLE webhook_secrets (
    owner TEXT PRIMARY KEY,
    secret TEXT NOT NULL
) WITHOUT ROWID;

-- One event to one endpoint (webhook_id NULL: the batch's webhook_url), leased by an engine
-- while it attempts it. attempt_log: a JSON array of the latest attempts.
CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL,
    webhook_id TEXT,
    url TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    lease_owner TEXT,
    lease_expires REAL,
    attempt_log TEXT NOT NULL DEFAULT '[]',
    created_at REAL NOT NULL,
    delivered_at REAL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_of_webhook ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_of_event ON webhook_deliveries (event_id);

-- A file of a workspace. Uploaded files keep their bytes in file_pieces; a batch's output and
-- error files (purpose batch_output) have none: they are made from its results as they are read.
CREATE TABLE files (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    purpose TEXT NOT NULL,
    filename TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL,
    -- For a batch's output ('output') or error ('error') file: that batch.
    batch_id TEXT,
    batch_lines TEXT
) WITHOUT ROWID;
CREATE INDEX files_by_owner ON files (owner, id);
-- The files that expire, soonest first: the engine's housekeeping deletes them (version 8).
CREATE INDEX files_expiring ON files (expires_at) WHERE expires_at IS NOT NULL;

-- An uploaded file's bytes, in pieces of up to a few MB, so that none is read whole.
CREATE TABLE file_pieces (
    file_id TEXT NOT NULL,
    piece INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (file_id, piece)
);

-- What the upload of a clean batch input file (every line a request for one url and one model)
-- found of its lines: its custom_ids (a JSON array) and each one's line's byte offset (a JSON
-- array, then the file's size); its pieces are piece_bytes long, but the last. Kept with the
-- pieces while a chunk refers to them (version 9).
CREATE TABLE input_file_lines (
    file_id TEXT PRIMARY KEY,
    piece_bytes INTEGER NOT NULL,
    url TEXT NOT NULL,
    model TEXT NOT NULL,
    custom_ids BLOB NOT NULL,
    starts BLOB NOT NULL
) WITHOUT ROWID;

-- An OpenAI batch: its `batches` row has the same id, except for one whose input file failed
-- validation, which has none (its errors are here). output/error files are recorded once made.
CREATE TABLE openai_batches (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    input_file_id TEXT NOT NULL,
    completion_window TEXT NOT NULL,
    metadata TEXT,
    created_at REAL NOT NULL,
    failed_at REAL,
    errors TEXT,
    files_made INTEGER NOT NULL DEFAULT 0,
    output_file_id TEXT,
    error_file_id TEXT,
    -- The one model of its input file (version 8).
    model TEXT,
    -- output_expires_after: its output and error files expire this long after they are made.
    output_expires_seconds INTEGER
) WITHOUT ROWID;
CREATE INDEX openai_batches_by_owner ON openai_batches (owner, id);
