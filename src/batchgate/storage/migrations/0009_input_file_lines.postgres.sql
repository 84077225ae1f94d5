-- Chunks that refer to their input file's lines instead of copying them (storage/base.py): what
-- the upload of a clean batch input file found of its lines, and where in that file each chunk's
-- requests are. A file's pieces and lines row stay while a chunk names them, after the file is
-- deleted or expires (storage/openai_tables.py).

-- One row per clean input file: the custom_ids (a JSON array) and each one's line's byte offset
-- (a JSON array, then the file's size); its pieces are piece_bytes long, but the last.
CREATE TABLE input_file_lines (
    file_id text COLLATE "C" PRIMARY KEY,
    piece_bytes integer NOT NULL,
    url text NOT NULL,
    model text NOT NULL,
    custom_ids bytea NOT NULL,
    starts bytea NOT NULL
);

-- A chunk whose params are its lines of file_id, bytes file_start to file_end (params empty).
ALTER TABLE chunk_requests ADD COLUMN file_id text COLLATE "C";
ALTER TABLE chunk_requests ADD COLUMN file_start bigint NOT NULL DEFAULT 0;
ALTER TABLE chunk_requests ADD COLUMN file_end bigint NOT NULL DEFAULT 0;
CREATE INDEX chunk_requests_of_file ON chunk_requests (file_id) WHERE file_id IS NOT NULL;
