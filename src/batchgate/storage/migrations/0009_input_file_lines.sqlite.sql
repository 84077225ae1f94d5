-- Chunks that refer to their input file's lines instead of copying them (storage/base.py): what
-- the upload of a clean batch input file found of its lines, and where in that file each chunk's
-- requests are. A file's pieces and lines row stay while a chunk names them, after the file is
-- deleted or expires (storage/openai_tables.py).

-- One row per clean input file: the custom_ids (a JSON array) and each one's line's byte offset
-- (a JSON array, then the file's size); its pieces are piece_bytes long, but the last.
CREATE TABLE input_file_lines (
    file_id TEXT PRIMARY KEY,
    piece_bytes INTEGER NOT NULL,
    url TEXT NOT NULL,
    model TEXT NOT NULL,
    custom_ids BLOB NOT NULL,
    starts BLOB NOT NULL
) WITHOUT ROWID;

-- A chunk whose params are its lines of file_id, bytes file_start to file_end (params empty).
ALTER TABLE chunk_requests ADD COLUMN file_id TEXT;
ALTER TABLE chunk_requests ADD COLUMN file_start INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chunk_requests ADD COLUMN file_end INTEGER NOT NULL DEFAULT 0;
CREATE INDEX chunk_requests_of_file ON chunk_requests (file_id) WHERE file_id IS NOT NULL;
