-- The OpenAI Batch API (api/openai_*.py): files uploaded for batches, the output and error
-- files made from a batch's results, and what an OpenAI batch adds to its `batches` row.

-- A file of a workspace. Uploaded files keep their bytes in file_pieces; a batch's output and
-- error files (purpose batch_output) have none: they are made from its results as they are read.
CREATE TABLE files (
    id text COLLATE "C" PRIMARY KEY,
    owner text NOT NULL,
    purpose text NOT NULL,
    filename text NOT NULL,
    bytes bigint NOT NULL,
    created_at double precision NOT NULL,
    expires_at double precision,
    -- For a batch's output ('output') or error ('error') file: that batch.
    batch_id text COLLATE "C",
    batch_lines text
);
CREATE INDEX files_by_owner ON files (owner, id);

-- An uploaded file's bytes, in pieces of up to a few MB, so that none is read whole.
CREATE TABLE file_pieces (
    file_id text COLLATE "C" NOT NULL,
    piece integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (file_id, piece)
);

-- An OpenAI batch: its `batches` row has the same id, except for one whose input file failed
-- validation, which has none (its errors are here). output/error files are recorded once made.
CREATE TABLE openai_batches (
    id text COLLATE "C" PRIMARY KEY,
    owner text NOT NULL,
    endpoint text NOT NULL,
    input_file_id text NOT NULL,
    completion_window text NOT NULL,
    metadata text,
    created_at double precision NOT NULL,
    failed_at double precision,
    errors text,
    files_made boolean NOT NULL DEFAULT false,
    output_file_id text,
    error_file_id text
);
CREATE INDEX openai_batches_by_owner ON openai_batches (owner, id);
