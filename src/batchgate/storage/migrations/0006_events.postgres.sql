-- Events (docs/events.md): each batch's numbered events, written in the transaction of the state
-- change that causes them, and the webhooks that deliver them. The event table is the outbox:
-- a delivery row per matching endpoint is written with its event.

ALTER TABLE batches ADD COLUMN webhook_url text;

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
