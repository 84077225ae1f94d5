-- The OpenAI Batch API (api/openai_*.py): files uploaded for batches, the output and error
-- files made from a batch's results, and what an OpenAI batch adds to its `batches` row.

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

-- An uploaded file's bytes, in pieces of up to a few MB, so that none is read whole.
CREATE TABLE file_pieces (
    file_id TEXT NOT NULL,
    piece INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (file_id, piece)
);

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
    error_file_id TEXT
) WITHOUT ROWID;
CREATE INDEX openai_batches_by_owner ON openai_batches (owner, id);
