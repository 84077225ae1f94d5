"""What the OpenAI Batch API keeps, and the SQL both stores share for it.

Files belong to a workspace. An uploaded file's bytes are stored in pieces (`file_pieces`), each
read on its own, so no file is ever held whole. An upload stores each piece as it arrives, in a
commit of its own, and its `files` row last: until then the file is nowhere to be seen, and the
pieces of an upload that never got there are deleted later (delete_abandoned_uploads). A batch's
output and error files have no bytes of their own: they are rows naming the batch, made from its
results as they are read.

A batch input file whose upload found every line a request for one url and one model also has
its `input_file_lines` row (InputLines): its custom_ids and where each line starts. A batch made
from it stores no copy of its requests: each chunk names the bytes of its lines in the file
(storage/base.py), read from the pieces whenever the chunk is. So a file's pieces outlive its
`files` row while a chunk refers to them: deleting or expiring the file removes the row (the
Files API no longer sees it) and the bytes only once no chunk names them; the last chunk's
batch deleted or archived removes them then.

An OpenAI batch is a batch like any other (its `batches` row, chunks and results, run by the
same engine), plus an `openai_batches` row: its endpoint, input file, window, and, once it has
ended, its output files. A batch whose input file fails validation has only that row.

Functions take a DB-API connection of either store and its placeholder (`?` or `%s`).
"""

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from batchgate.lifecycle.openai_input import InputSpan

FILE_FIELDS = "id, owner, purpose, filename, bytes, created_at, expires_at, batch_id, batch_lines"
OPENAI_BATCH_FIELDS = (
    "id, owner, endpoint, input_file_id, completion_window, metadata, created_at, failed_at,"
    " errors, files_made, output_file_id, error_file_id, model, output_expires_seconds"
)
# The expired files one housekeeping call deletes, at most: each turn stays short.
EXPIRED_PER_CALL = 100
# The pieces a reader asks for at a time.
PIECES_PER_READ = 4


class Connection(Protocol):
    def execute(self, query: Any, params: Any = ..., /) -> Any: ...


@dataclass(frozen=True, slots=True)
class FileRow:
    id: str
    owner: str
    purpose: str
    filename: str
    bytes: int
    created_at: float
    expires_at: float | None = None
    # A batch's output file: the batch, and which of its lines ("output" or "error").
    batch_id: str | None = None
    batch_lines: str | None = None


class FileGone(Exception):
    """The input file a batch's chunks would refer to was deleted meanwhile."""


@dataclass(frozen=True, slots=True)
class InputLines:
    """What the upload of a batch input file found, when every line is a request for `url` and
    `model`: the custom_ids in order, and the byte offset of each one's line followed by the
    file's size; its pieces are each `piece_bytes` long, but the last."""

    piece_bytes: int
    url: str
    model: str
    custom_ids: Sequence[str]
    starts: Sequence[int]


@dataclass(frozen=True, slots=True)
class OpenAIBatchRow:
    id: str
    owner: str
    endpoint: str
    input_file_id: str
    completion_window: str
    metadata: Mapping[str, str] | None
    created_at: float
    # A batch whose input file failed validation: when, and the errors of its lines.
    failed_at: float | None = None
    errors: Sequence[Mapping[str, Any]] | None = None
    # Whether its output and error files have been made (once it has ended), and their ids.
    files_made: bool = False
    output_file_id: str | None = None
    error_file_id: str | None = None
    # The one model of its input file (None when no line named one).
    model: str | None = None
    # `output_expires_after`: its output and error files expire this long after it ended.
    output_expires_seconds: int | None = None


def _file(row: Sequence[Any]) -> FileRow:
    return FileRow(*row)


def _openai_batch(row: Sequence[Any]) -> OpenAIBatchRow:
    (
        batch_id, owner, endpoint, input_file_id, window, metadata, created_at, failed_at,
        errors, files_made, output_file_id, error_file_id, model, output_expires_seconds,
    ) = row  # fmt: skip
    return OpenAIBatchRow(
        batch_id, owner, endpoint, input_file_id, window,
        None if metadata is None else orjson.loads(metadata),
        created_at, failed_at,
        None if errors is None else orjson.loads(errors),
        bool(files_made), output_file_id, error_file_id, model, output_expires_seconds,
    )  # fmt: skip


def insert_file(
    db: Connection,
    mark: str,
    file: FileRow,
    pieces: Iterable[bytes],
    lines: Callable[[], InputLines | None] = lambda: None,
) -> None:
    """Stores the file; `lines` says, once every piece is read, what its upload found."""
    for number, data in enumerate(pieces):
        insert_piece(db, mark, file.id, number, data)
    insert_file_row(db, mark, file, lines())


def insert_piece(db: Connection, mark: str, file_id: str, number: int, data: bytes) -> None:
    db.execute(
        f"INSERT INTO file_pieces (file_id, piece, data) VALUES ({mark}, {mark}, {mark})",
        (file_id, number, data),
    )


def insert_file_row(db: Connection, mark: str, file: FileRow, found: InputLines | None) -> None:
    """The file's row, which makes it visible (its pieces stored already), and what its upload
    found of its lines, if anything."""
    db.execute(
        f"INSERT INTO files ({FILE_FIELDS}) VALUES ({', '.join([mark] * 9)})"
        " ON CONFLICT (id) DO NOTHING",
        (
            file.id, file.owner, file.purpose, file.filename, file.bytes, file.created_at,
            file.expires_at, file.batch_id, file.batch_lines,
        ),
    )  # fmt: skip
    if found is not None:
        db.execute(
            "INSERT INTO input_file_lines (file_id, piece_bytes, url, model, custom_ids, starts)"
            f" VALUES ({', '.join([mark] * 6)})",
            (
                file.id, found.piece_bytes, found.url, found.model,
                orjson.dumps(found.custom_ids), orjson.dumps(found.starts),
            ),
        )  # fmt: skip


def input_lines(db: Connection, mark: str, file_id: str) -> InputLines | None:
    row = db.execute(
        "SELECT piece_bytes, url, model, custom_ids, starts FROM input_file_lines"
        f" WHERE file_id = {mark}",
        (file_id,),
    ).fetchone()
    if row is None:
        return None
    piece_bytes, url, model, custom_ids, starts = row
    return InputLines(piece_bytes, url, model, orjson.loads(custom_ids), orjson.loads(starts))


def hold_input_file(db: Connection, mark: str, file_id: str, lock: str = "") -> None:
    """Called by a create after storing chunks that refer to the file, in its transaction: raises
    FileGone if the file was deleted meanwhile. With `lock` (PostgreSQL's FOR SHARE), a delete
    waits for the create to commit and then sees its chunks, or the create for the delete."""
    if db.execute(f"SELECT 1 FROM files WHERE id = {mark}{lock}", (file_id,)).fetchone() is None:
        raise FileGone(file_id)


class SpanReader(Protocol):
    """Reads bytes `low` to `high` of one of a file's pieces."""

    def __call__(self, file_id: str, piece: int, low: int, high: int, /) -> bytes: ...


def substr_reader(db: Connection, mark: str) -> SpanReader:
    """Reads a piece's span with SQL's substr: PostgreSQL fetches a stored value's slice only up
    to its end."""

    def read(file_id: str, piece: int, low: int, high: int) -> bytes:
        [(data,)] = db.execute(
            f"SELECT substr(data, {mark}, {mark}) FROM file_pieces"
            f" WHERE file_id = {mark} AND piece = {mark}",
            (low + 1, high - low, file_id, piece),
        ).fetchall()
        return bytes(data)

    return read


def span_in_file(
    db: Connection, mark: str, file_id: str, start: int, end: int, read: SpanReader
) -> InputSpan:
    """Bytes `start` to `end` of an input file, which a chunk refers to, read from the file's
    pieces by `read`."""
    # The first piece's length rather than input_file_lines' piece_bytes, which SQLite finds
    # only by reading that row whole (its custom_ids and starts: a megabyte for 50,000 lines).
    # All pieces but the last have that length; a file of one piece has no other.
    [(piece_bytes,)] = db.execute(
        f"SELECT length(data) FROM file_pieces WHERE file_id = {mark} AND piece = 0", (file_id,)
    ).fetchall()
    spans = []
    for piece in range(start // piece_bytes, (end - 1) // piece_bytes + 1):
        offset = piece * piece_bytes
        low, high = max(start - offset, 0), min(end - offset, piece_bytes)
        spans.append(read(file_id, piece, low, high))
    return InputSpan(spans[0] if len(spans) == 1 else b"".join(spans))


def drop_unreferenced_bytes(db: Connection, mark: str, file_ids: Iterable[str | None]) -> None:
    """Deletes the bytes of the files, among `file_ids`, that are gone and no chunk names."""
    for file_id in {file_id for file_id in file_ids if file_id is not None}:
        if db.execute(
            f"SELECT 1 FROM files WHERE id = {mark} UNION ALL"
            f" SELECT 1 FROM chunk_requests WHERE file_id = {mark}",
            (file_id, file_id),
        ).fetchone():
            continue
        db.execute(f"DELETE FROM file_pieces WHERE file_id = {mark}", (file_id,))
        db.execute(f"DELETE FROM input_file_lines WHERE file_id = {mark}", (file_id,))


def get_file(db: Connection, mark: str, owner: str, file_id: str) -> FileRow | None:
    row = db.execute(
        f"SELECT {FILE_FIELDS} FROM files WHERE id = {mark} AND owner = {mark}", (file_id, owner)
    ).fetchone()
    return None if row is None else _file(row)


def list_files(
    db: Connection,
    mark: str,
    owner: str,
    purpose: str | None,
    after: str | None,
    limit: int,
    ascending: bool,
) -> tuple[list[FileRow], bool]:
    conditions, parameters = [f"owner = {mark}"], [owner]
    if purpose is not None:
        conditions.append(f"purpose = {mark}")
        parameters.append(purpose)
    if after is not None:
        conditions.append(f"id {'>' if ascending else '<'} {mark}")
        parameters.append(after)
    rows = db.execute(
        f"SELECT {FILE_FIELDS} FROM files WHERE {' AND '.join(conditions)}"
        f" ORDER BY id {'ASC' if ascending else 'DESC'} LIMIT {limit + 1}",
        parameters,
    ).fetchall()
    return [_file(row) for row in rows[:limit]], len(rows) > limit


def file_pieces(db: Connection, mark: str, file_id: str, after: int) -> list[bytes]:
    """The next PIECES_PER_READ pieces of the file after piece number `after`."""
    rows = db.execute(
        f"SELECT data FROM file_pieces WHERE file_id = {mark} AND piece > {mark}"
        f" ORDER BY piece LIMIT {PIECES_PER_READ}",
        (file_id, after),
    ).fetchall()
    return [bytes(data) for (data,) in rows]


def iter_pieces(read: "PieceReader", file_id: str) -> Iterator[bytes]:
    """A file's bytes a few pieces at a time, each read by `read(file_id, after)`."""
    after = -1
    while True:
        pieces = read(file_id, after)
        yield from pieces
        after += len(pieces)
        if len(pieces) < PIECES_PER_READ:
            return


class PieceReader(Protocol):
    def __call__(self, file_id: str, after: int, /) -> list[bytes]: ...


def delete_file(db: Connection, mark: str, owner: str, file_id: str) -> bool:
    if get_file(db, mark, owner, file_id) is None:
        return False
    db.execute(f"DELETE FROM files WHERE id = {mark}", (file_id,))
    drop_unreferenced_bytes(db, mark, [file_id])
    return True


def delete_expired_files(db: Connection, mark: str, now: float) -> int:
    """Deletes up to EXPIRED_PER_CALL files whose expires_at has passed, with their bytes (those
    that no chunk names)."""
    expired = [
        file_id
        for (file_id,) in db.execute(
            f"SELECT id FROM files WHERE expires_at IS NOT NULL AND expires_at <= {mark}"
            f" ORDER BY expires_at LIMIT {EXPIRED_PER_CALL}",
            (now,),
        ).fetchall()
    ]
    for file_id in expired:
        db.execute(f"DELETE FROM files WHERE id = {mark}", (file_id,))
    drop_unreferenced_bytes(db, mark, expired)
    return len(expired)


def delete_output_files(db: Connection, mark: str, batch_ids: Sequence[str]) -> None:
    """Deletes the output and error files of the batches, whose results are archived: their
    lines went with those results. The batches keep the files' ids, as OpenAI's keep those of
    expired files."""
    for batch_id in batch_ids:
        db.execute(
            "DELETE FROM files WHERE id IN"
            f" (SELECT output_file_id FROM openai_batches WHERE id = {mark}"
            f" UNION SELECT error_file_id FROM openai_batches WHERE id = {mark})",
            (batch_id, batch_id),
        )


def delete_abandoned_uploads(db: Connection, mark: str, before_id: str) -> int:
    """Deletes the pieces of up to EXPIRED_PER_CALL uploads that never got their file's row (the
    server stopped or the upload failed before it was stored) and whose ids sort before
    `before_id`, all started long enough ago to have ended. A file deleted while chunks still
    refer to its lines has no row either: its pieces stay."""
    abandoned = [
        file_id
        for (file_id,) in db.execute(
            f"SELECT file_id FROM file_pieces p WHERE piece = 0 AND file_id < {mark}"
            " AND NOT EXISTS (SELECT 1 FROM files f WHERE f.id = p.file_id)"
            " AND NOT EXISTS (SELECT 1 FROM chunk_requests c WHERE c.file_id = p.file_id)"
            f" LIMIT {EXPIRED_PER_CALL}",
            (before_id,),
        ).fetchall()
    ]
    drop_unreferenced_bytes(db, mark, abandoned)
    return len(abandoned)


def insert_openai_batch(db: Connection, mark: str, batch: OpenAIBatchRow) -> None:
    db.execute(
        f"INSERT INTO openai_batches ({OPENAI_BATCH_FIELDS}) VALUES ({', '.join([mark] * 14)})",
        (
            batch.id, batch.owner, batch.endpoint, batch.input_file_id, batch.completion_window,
            None if batch.metadata is None else orjson.dumps(batch.metadata).decode(),
            batch.created_at, batch.failed_at,
            None if batch.errors is None else orjson.dumps(batch.errors).decode(),
            batch.files_made, batch.output_file_id, batch.error_file_id, batch.model,
            batch.output_expires_seconds,
        ),
    )  # fmt: skip


def get_openai_batch(db: Connection, mark: str, owner: str, batch_id: str) -> OpenAIBatchRow | None:
    row = db.execute(
        f"SELECT {OPENAI_BATCH_FIELDS} FROM openai_batches WHERE id = {mark} AND owner = {mark}",
        (batch_id, owner),
    ).fetchone()
    return None if row is None else _openai_batch(row)


def list_openai_batches(
    db: Connection, mark: str, owner: str, after: str | None, limit: int, before: str | None
) -> tuple[list[OpenAIBatchRow], bool]:
    """A page newest first, and whether more follow: older than `after`, or else the page just
    newer than `before` (read oldest first, then turned round)."""
    conditions, parameters = [f"owner = {mark}"], [owner]
    newer = after is None and before is not None
    if after is not None:
        conditions.append(f"id < {mark}")
        parameters.append(after)
    elif before is not None:
        conditions.append(f"id > {mark}")
        parameters.append(before)
    rows = db.execute(
        f"SELECT {OPENAI_BATCH_FIELDS} FROM openai_batches WHERE {' AND '.join(conditions)}"
        f" ORDER BY id {'ASC' if newer else 'DESC'} LIMIT {limit + 1}",
        parameters,
    ).fetchall()
    page = [_openai_batch(row) for row in rows[:limit]]
    return (page[::-1] if newer else page), len(rows) > limit


def results_bytes(db: Connection, mark: str, batch_id: str) -> int:
    """The size of all the batch's result lines, summed by the database without reading them."""
    [(size,)] = db.execute(
        f"SELECT coalesce(sum(length(lines)), 0) FROM results WHERE batch_id = {mark}", (batch_id,)
    ).fetchall()
    return int(size)


def record_output_files(
    db: Connection, mark: str, batch: OpenAIBatchRow, files: Sequence[FileRow]
) -> None:
    """Stores the ended batch's output files (those with lines) and marks them made; a second
    call (another reader made them meanwhile) changes nothing."""
    for file in files:
        insert_file(db, mark, file, ())
    by_lines = {file.batch_lines: file.id for file in files}
    db.execute(
        f"UPDATE openai_batches SET files_made = {mark}, output_file_id = {mark},"
        f" error_file_id = {mark} WHERE id = {mark} AND files_made = {mark}",
        (True, by_lines.get("output"), by_lines.get("error"), batch.id, False),
    )
