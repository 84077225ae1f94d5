"""The rules of the OpenAI Batch API: files, and batches made from a file of requests.

An OpenAI batch runs as any batch does (BatchService.create: the same chunks, engine, exactly once).
Its input file's lines are checked as the upload stores them (lifecycle/openai_input.py): a batch of
a clean file for its endpoint copies nothing, its chunks refer to the file's lines
(storage/base.py). Any other file is read back and checked line by line: a file with bad lines makes
a batch that is `failed` at once, its errors naming the lines, and runs nothing; the requests of a
good one are stored as its chunks' params. Once a batch has ended, its output and error files are
recorded (the first reader does it), each made from its results when read, never stored twice. An
ended batch's failed requests can be retried as a child batch of a new input file
(service/retries.py picks them).
"""

import tempfile
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import replace
from typing import IO

import anyio.to_thread
import msgspec
import orjson

from batchgate.config.settings import Settings
from batchgate.engine.openai_requests import ENDPOINTS
from batchgate.lifecycle import openai_results
from batchgate.lifecycle.ids import OPENAI_BATCH_PREFIX, new_file_id, new_openai_batch_id
from batchgate.lifecycle.openai_input import CheckedFile, InputScan, check_input_file, lines_of
from batchgate.lifecycle.openai_status import openai_status
from batchgate.service import retries
from batchgate.service.batches import BatchNotFound, BatchService
from batchgate.service.file_uploads import PIECE_BYTES, FileUpload, found
from batchgate.service.point_reads import point_read
from batchgate.service.result_views import ResultFilter, ResultView
from batchgate.storage.base import (
    BatchOptions,
    BatchRow,
    NewChunk,
    ResultCounts,
    RetryRow,
    Store,
    WrongState,
)
from batchgate.storage.openai_tables import FileGone, FileRow, InputLines, OpenAIBatchRow

# A retry's input file is written to disk past this size.
IN_MEMORY_BYTES = 1024 * 1024
COMPLETION_WINDOWS = {"24h": 24 * 3600.0}
# A retry without filters: its error file's requests.
DEFAULT_RETRY = retries.OpenAIRetrySelection()


class FileNotFound(BatchNotFound):
    """No file with that id for this owner: 404."""


class InputFileInvalid(Exception):
    """The create's arguments are wrong (not its file's lines): 400, naming the parameter."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param


def into_chunks(checked: CheckedFile, chunk_size: int) -> Iterator[NewChunk]:
    for start in range(0, len(checked.custom_ids), chunk_size):
        ids = checked.custom_ids[start : start + chunk_size]
        # The JSON array `[body,body,...]` in one copy of the bodies (a chunk of large bodies
        # is megabytes): the brackets and commas go between them.
        pieces: list[bytes | msgspec.Raw] = [b","] * (2 * len(ids) + 1)
        pieces[0], pieces[-1] = b"[", b"]"
        pieces[1::2] = checked.bodies[start : start + chunk_size]
        yield NewChunk(count=len(ids), custom_ids=orjson.dumps(ids), params=b"".join(pieces))


def chunks_in_file(file: FileRow, lines: InputLines, chunk_size: int) -> Iterator[NewChunk]:
    """Chunks that refer to the file's lines: each its custom_ids and its lines' byte range."""
    custom_ids, starts = lines.custom_ids, lines.starts
    for start in range(0, len(custom_ids), chunk_size):
        end = min(start + chunk_size, len(custom_ids))
        yield NewChunk(
            count=end - start,
            custom_ids=orjson.dumps(custom_ids[start:end]),
            params=b"",
            file_id=file.id,
            file_start=starts[start],
            file_end=starts[end],
        )


def _pieces(upload: IO[bytes]) -> Iterator[bytes]:
    upload.seek(0)
    while piece := upload.read(PIECE_BYTES):
        yield piece


def _scanned(scan: InputScan, pieces: Iterable[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        scan.add(piece)
        yield piece
    scan.finish()


async def _on_threads(blobs: Iterator[bytes]) -> AsyncIterator[bytes]:
    while (blob := await anyio.to_thread.run_sync(next, blobs, None)) is not None:
        yield blob


def _batch_lines(blobs: Iterable[bytes], output: bool) -> Iterator[bytes]:
    """The lines of the output file (2xx answers), or else of the error file."""
    for blob in blobs:
        kept = [line for line in blob.splitlines() if openai_results.is_output(line) == output]
        if kept:
            yield b"\n".join(kept) + b"\n"


class OpenAIService:
    def __init__(self, store: Store, settings: Settings, batches: BatchService) -> None:
        self._store = store
        self._settings = settings
        self._batches = batches

    # --- files --------------------------------------------------------------------------

    def new_upload(self) -> FileUpload:
        """A file to be stored as its upload arrives; then `finish_upload` (or its `discard`)."""
        return FileUpload(self._store, self._settings.openai_max_batch_lines)

    async def finish_upload(
        self,
        upload: FileUpload,
        owner: str,
        filename: str,
        purpose: str,
        expires_seconds: int | None = None,
    ) -> FileRow:
        """Commits an upload received whole: the file; see `create_file` for its expiry."""
        expires = self._expires_seconds(purpose, expires_seconds)
        return await upload.finish(owner, filename, purpose, expires)

    async def create_file(
        self,
        owner: str,
        upload: IO[bytes],
        size: int,
        filename: str,
        purpose: str,
        expires_seconds: int | None = None,
    ) -> FileRow:
        """Stores a file, read from `upload` (a temporary file) in pieces; one with
        `expires_seconds` is deleted that long after (the engine's housekeeping). A batch input
        file stored without it expires after `openai_batch_file_expiry_seconds`, if set."""
        now = time.time()
        expires = self._expires_seconds(purpose, expires_seconds)
        expires_at = None if expires is None else now + expires
        file = FileRow(new_file_id(), owner, purpose, filename, size, now, expires_at)
        scan = InputScan(self._settings.openai_max_batch_lines)
        await anyio.to_thread.run_sync(
            self._store.create_file,
            file,
            _scanned(scan, _pieces(upload)),
            lambda: found(scan, size),
        )
        return file

    def _expires_seconds(self, purpose: str, expires_seconds: int | None) -> int | None:
        default_expiry = self._settings.openai_batch_file_expiry_seconds
        if expires_seconds is None and purpose == "batch" and default_expiry > 0:
            return int(default_expiry)
        return expires_seconds

    async def get_file(self, owner: str, file_id: str) -> FileRow:
        file = await anyio.to_thread.run_sync(self._store.get_file, owner, file_id)
        # An expired file is gone, even in the moment before housekeeping deletes it.
        if file is None or (file.expires_at is not None and file.expires_at <= time.time()):
            raise FileNotFound(f"No such File object: {file_id}")
        return file

    async def list_files(
        self, owner: str, purpose: str | None, after: str | None, limit: int, ascending: bool
    ) -> tuple[list[FileRow], bool]:
        return await anyio.to_thread.run_sync(
            self._store.list_files, owner, purpose, after, limit, ascending
        )

    async def file_content(self, owner: str, file_id: str) -> AsyncIterator[bytes]:
        """The file's bytes, streamed: stored pieces, or a batch's result lines. Checks first."""
        file = await self.get_file(owner, file_id)
        if file.batch_id is None:
            return _on_threads(self._store.iter_file(file.id))
        lines = _batch_lines(self._store.iter_results(file.batch_id), file.batch_lines == "output")
        return _on_threads(lines)

    async def delete_file(self, owner: str, file_id: str) -> None:
        await self.get_file(owner, file_id)  # an expired one is gone already
        if not await anyio.to_thread.run_sync(self._store.delete_file, owner, file_id):
            raise FileNotFound(f"No such File object: {file_id}")

    # --- batches ------------------------------------------------------------------------

    async def create_batch(
        self,
        owner: str,
        input_file_id: str,
        endpoint: str,
        completion_window: str,
        metadata: Mapping[str, str] | None,
        output_expires_seconds: int | None = None,
        retry_of: tuple[str, ResultCounts] | None = None,
    ) -> tuple[OpenAIBatchRow, BatchRow | None]:
        """A batch of the input file's requests; with `retry_of` (the parent's id and the
        results it retries), recorded as that batch's retry."""
        if endpoint not in ENDPOINTS:
            raise InputFileInvalid(
                "endpoint", f"{endpoint!r} is not supported; use one of {', '.join(ENDPOINTS)}"
            )
        window = COMPLETION_WINDOWS.get(completion_window)
        if window is None:
            raise InputFileInvalid("completion_window", f"must be '24h', not {completion_window!r}")
        file = await self.get_file(owner, input_file_id)
        if file.purpose != "batch" or file.batch_id is not None:
            raise InputFileInvalid(
                "input_file_id", f"{input_file_id} has purpose {file.purpose!r}, not 'batch'"
            )
        lines = await anyio.to_thread.run_sync(self._store.input_lines, file.id)
        if lines is not None and not self._refers_to(lines, endpoint):
            lines = None
        checked = CheckedFile()
        if lines is None:
            checked = await anyio.to_thread.run_sync(self._check, file, endpoint)
        row = OpenAIBatchRow(
            new_openai_batch_id(),
            owner,
            endpoint,
            input_file_id,
            completion_window,
            metadata or None,
            time.time(),
            model=checked.model if lines is None else lines.model,
            output_expires_seconds=output_expires_seconds,
        )
        link = (
            None if retry_of is None else RetryRow(row.id, retry_of[0], row.created_at, retry_of[1])
        )
        if checked.errors:
            failed = replace(row, failed_at=row.created_at, errors=checked.errors)
            await anyio.to_thread.run_sync(self._store.save_failed_openai_batch, failed)
            return failed, None
        chunk_size = self._settings.chunk_size
        try:
            batch, _ = await self._batches.create(
                owner,
                len(checked.custom_ids if lines is None else lines.custom_ids),
                into_chunks(checked, chunk_size)
                if lines is None
                else chunks_in_file(file, lines, chunk_size),
                BatchOptions(metadata=metadata or None, openai=row),
                window,
                batch_id=row.id,
                retry_of=link,
            )
        except FileGone:
            raise FileNotFound(f"No such File object: {input_file_id}") from None
        return row, batch

    def _refers_to(self, lines: InputLines, endpoint: str) -> bool:
        """Whether a batch of a file whose upload found `lines` refers to them as they are: its
        requests are for `endpoint`, and not too many (else they are checked, naming errors)."""
        return (
            lines.url == endpoint and len(lines.custom_ids) <= self._settings.openai_max_batch_lines
        )

    def _check(self, file: FileRow, endpoint: str) -> CheckedFile:
        return check_input_file(
            lines_of(self._store.iter_file(file.id)),
            endpoint,
            self._settings.openai_max_batch_lines,
        )

    async def get_batch(self, owner: str, batch_id: str) -> tuple[OpenAIBatchRow, BatchRow | None]:
        row = await point_read(self._store, self._store.get_openai_batch, owner, batch_id)
        if row is None:
            raise BatchNotFound(f"No batch found with id '{batch_id}'.")
        return await self._with_batch(row)

    async def _with_batch(self, row: OpenAIBatchRow) -> tuple[OpenAIBatchRow, BatchRow | None]:
        if row.failed_at is not None:
            return row, None
        batch = await self._batches.get(row.owner, row.id, openai=True)
        if batch.status == "ended" and not row.files_made:
            row = await anyio.to_thread.run_sync(self._make_output_files, row, batch)
        return row, batch

    def _make_output_files(self, row: OpenAIBatchRow, batch: BatchRow) -> OpenAIBatchRow:
        """Records the ended batch's output and error files."""
        sizes = self._output_and_error_bytes(batch)
        # Made when the batch ended, whenever the first reader records them: their expiry
        # counts from then.
        assert batch.ended_at is not None
        made_at = batch.ended_at
        expires_at = None
        if row.output_expires_seconds is not None:
            expires_at = made_at + row.output_expires_seconds
        files = [
            FileRow(
                # The batch's time-sortable part: listed by id, outputs sit by their batch's age.
                f"file-{batch.id.removeprefix(OPENAI_BATCH_PREFIX)}-{lines}",
                row.owner,
                "batch_output",
                f"{batch.id}_{lines}.jsonl",
                size,
                made_at,
                expires_at,
                batch.id,
                lines,
            )
            for lines, size in sizes.items()
            if size
        ]
        self._store.record_output_files(row, files)
        made = self._store.get_openai_batch(row.owner, row.id)
        assert made is not None
        return made

    def _output_and_error_bytes(self, batch: BatchRow) -> dict[str, int]:
        """The sizes of the ended batch's output and error files.

        Each request's line is in the output file if it succeeded (a 200), else in the error
        file. When all went one way, as most batches' do, that file holds all the results, which
        the store sizes without reading them (reading them was about 1 µs a line, inside the
        time a batch takes to end); otherwise each line is read for its status."""
        if batch.succeeded == batch.total:
            return {"output": self._store.results_bytes(batch.id), "error": 0}
        if batch.succeeded == 0:
            return {"output": 0, "error": self._store.results_bytes(batch.id)}
        sizes = {"output": 0, "error": 0}
        for blob in self._store.iter_results(batch.id):
            output, error = openai_results.output_and_error_bytes(blob)
            sizes["output"] += output
            sizes["error"] += error
        return sizes

    async def list_batches(
        self, owner: str, after: str | None, limit: int, before: str | None = None
    ) -> tuple[list[tuple[OpenAIBatchRow, BatchRow | None]], bool]:
        """A page newest first: older than `after`, or just newer than `before` (the dashboard's
        way back), and whether more follow in that direction."""
        rows, has_more = await anyio.to_thread.run_sync(
            self._store.list_openai_batches, owner, after, limit, before
        )
        return [await self._with_batch(row) for row in rows], has_more

    async def results(
        self, owner: str, batch_id: str, view: ResultView, wanted: ResultFilter
    ) -> tuple[int | None, AsyncIterator[bytes]]:
        """The batch's output and error lines as a view asks for them (BatchService.results),
        while it runs too: what its output and error files will hold."""
        row, _ = await self.get_batch(owner, batch_id)
        if row.failed_at is not None:
            raise WrongState(f"Batch {batch_id} has failed: it ran nothing, its errors say why.")
        return await self._batches.results(owner, batch_id, view, wanted, openai=True)

    async def retry_batch(
        self,
        owner: str,
        batch_id: str,
        selection: retries.OpenAIRetrySelection = DEFAULT_RETRY,
    ) -> tuple[OpenAIBatchRow, BatchRow | None]:
        """A new batch of the ended batch's requests whose lines the selection takes (by
        default its error file's: the failed ones), from a new input file of exactly those
        request lines, recorded as its retry (service/retries.py)."""
        row, parent = await self.get_batch(owner, batch_id)
        if parent is None:
            raise WrongState(f"Batch {batch_id} has failed: it ran nothing to retry.")
        if parent.archived_at is not None:
            raise BatchNotFound(
                f"The requests of batch {batch_id} were archived after the retention period."
            )
        if parent.status != "ended":
            raise WrongState(
                f"Batch {batch_id} is still {openai_status(parent)}; only ended batches can be"
                " retried."
            )
        taken = await anyio.to_thread.run_sync(
            retries.count_taken, self._store, batch_id, selection
        )
        if not taken.total:
            which = "failed" if selection == DEFAULT_RETRY else "matches the retry's filters"
            raise WrongState(f"No request of batch {batch_id} {which}: there is nothing to retry.")
        if parent.retried_as is not None:
            raise WrongState(
                f"Batch {batch_id} has been retried already: retry its retry batch instead."
            )
        with tempfile.SpooledTemporaryFile(IN_MEMORY_BYTES) as lines:
            size = await anyio.to_thread.run_sync(self._write_taken_lines, row, selection, lines)
            file = await self.create_file(owner, lines, size, f"{batch_id}_retry.jsonl", "batch")
        return await self.create_batch(
            owner,
            file.id,
            row.endpoint,
            row.completion_window,
            row.metadata,
            row.output_expires_seconds,
            retry_of=(batch_id, taken),
        )

    def _write_taken_lines(
        self, row: OpenAIBatchRow, selection: retries.OpenAIRetrySelection, lines: IO[bytes]
    ) -> int:
        """Writes the request lines of the requests the selection takes as submitted; their
        size."""
        for custom_id, body in retries.taken_requests(self._store, row.id, selection):
            lines.write(
                orjson.dumps(
                    {"custom_id": custom_id, "method": "POST", "url": row.endpoint, "body": body}
                )
                + b"\n"
            )
        return lines.tell()

    async def cancel_batch(
        self, owner: str, batch_id: str
    ) -> tuple[OpenAIBatchRow, BatchRow | None]:
        row, _ = await self.get_batch(owner, batch_id)
        if row.failed_at is not None:
            raise WrongState(f"Batch {batch_id} has failed; it cannot be cancelled.")
        await self._batches.cancel(owner, batch_id, openai=True)
        return await self.get_batch(owner, batch_id)
