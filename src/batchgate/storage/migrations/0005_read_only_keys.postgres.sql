-- Read-only keys (`batchgate keys create --read-only`): they see their workspace's batches, in
-- the API and the dashboard, but every call that changes something is refused (api/access.py).

ALTER TABLE api_keys ADD COLUMN read_only boolean NOT NULL DEFAULT false;
