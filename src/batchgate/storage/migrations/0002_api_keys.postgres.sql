-- API keys kept in the database, each belonging to a workspace whose batches its keys share.
-- Only a SHA-256 of each key and its public prefix are stored, never the key (storage/base.py).
-- A batch's owner becomes its workspace; batches of BATCHGATE_API_KEYS keep their owner, the
-- SHA-256 of their key, so nothing about existing rows changes.

CREATE TABLE api_keys (
    id text PRIMARY KEY,
    workspace text NOT NULL,
    prefix text NOT NULL UNIQUE,
    key_hash text NOT NULL,
    created_at double precision NOT NULL,
    revoked_at double precision
);
