-- What the OpenAI Batch object and Files add (api/openai_batches.py, api/openai_files.py): a
-- batch's model (the one model of its input file) and how long its output and error files are
-- kept (`output_expires_after`); files that expire (`expires_after`) are found by the engine's
-- housekeeping through files_expiring, and deleted.

ALTER TABLE openai_batches ADD COLUMN model TEXT;
ALTER TABLE openai_batches ADD COLUMN output_expires_seconds INTEGER;
CREATE INDEX files_expiring ON files (expires_at) WHERE expires_at IS NOT NULL;
