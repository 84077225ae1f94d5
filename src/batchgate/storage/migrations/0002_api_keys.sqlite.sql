-- API keys: a SHA-256 of each key and its public prefix, never the key (storage/base.py).
-- IF NOT EXISTS: see 0001.

CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    workspace TEXT NOT NULL,
    prefix TEXT NOT NULL UNIQUE,
    key_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
);
