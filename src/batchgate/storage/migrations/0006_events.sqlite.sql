-- Events (docs/events.md): each batch's numbered events, written in the transaction of the state
-- change that causes them, and the webhooks that deliver them. The event table is the outbox:
-- a delivery row per matching endpoint is written with its event.

ALTER TABLE batches ADD COLUMN webhook_url TEXT;

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
