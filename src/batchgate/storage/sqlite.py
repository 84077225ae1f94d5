"""The embedded store: one SQLite file in WAL mode, written by one connection at a time."""

import contextlib
import dataclasses
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import orjson

from batchgate.lifecycle.events import ARCHIVED, CANCELING, CREATED, DELETED, ENDED, PROGRESS
from batchgate.lifecycle.openai_input import InputSpan, params_array
from batchgate.storage import openai_tables
from batchgate.storage.base import (
    EVERY_BATCH,
    NO_OPTIONS,
    ApiKeyRow,
    BatchEvent,
    BatchFilter,
    BatchOptions,
    BatchRow,
    CommittedPart,
    DeliveryOutcome,
    DeliveryRow,
    IdempotencyRecord,
    LeasedChunk,
    LeasedDelivery,
    NewChunk,
    OutcomeReportRow,
    ResultCounts,
    ResultPart,
    RetryRow,
    StoredChunk,
    StoreFull,
    StoreUnavailable,
    TokenUsage,
    UsageReportRow,
    WebhookRow,
    WrongState,
    committed_before,
)
from batchgate.storage.batch_queries import (
    as_json,
    batch_columns,
    batch_row,
    list_page_query,
    queue_in_turns,
    usage_report_queries,
    usage_upsert,
)
from batchgate.storage.event_queries import EventTables
from batchgate.storage.migrations import newer_schema_problem
from batchgate.storage.migrations.sqlite import schema_status, upgrade
from batchgate.storage.openai_tables import FileRow, InputLines, OpenAIBatchRow
from batchgate.storage.unavailable import raises_store_unavailable

log = logging.getLogger("batchgate.storage")

API_KEY_COLUMNS = "id, workspace, prefix, key_hash, created_at, revoked_at, read_only"

USAGE_ARRAY = "json_group_array(json_array({}))"
BATCH_COLUMNS = batch_columns("batches", USAGE_ARRAY)
USAGE_UPSERT = usage_upsert("?")
QUEUE_IN_TURNS = queue_in_turns("?")
USAGE_REPORT = usage_report_queries("CAST(b.created_at / 86400 AS INTEGER)", "?")
BLOB_CONTAINS = "instr({blob}, {needle}) > 0"  # list_page_query's custom_id search
RESULT_PARTS_PER_READ = 8
# A chunk's params, or the lines of an input file it refers to instead (_params).
REQUEST_FIELDS = "params, file_id, file_start, file_end"
EVENTS = EventTables("?")
# Old events deleted by one call: transactions stay short.
FORGOTTEN_PER_CALL = 1000
RETRY_COLUMNS = (
    "child_id, parent_id, created_at,"
    " retried_succeeded, retried_errored, retried_canceled, retried_expired"
)
CHECKPOINT_SECONDS = 1.0
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024


# Conditions that pass, by themselves or by an operator's hand: a locked file, an I/O error, a
# missing or read-only directory. Constraint violations, misuse and corruption are not among them.
UNAVAILABLE_CODES = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_READONLY,
    }
)


def unavailable_error(error: Exception) -> type[StoreUnavailable] | None:
    if not isinstance(error, sqlite3.OperationalError):
        return None
    code = error.sqlite_errorcode & 0xFF  # the primary code of an extended one
    if code == sqlite3.SQLITE_FULL:
        return StoreFull
    return StoreUnavailable if code in UNAVAILABLE_CODES else None


def _retry(row: tuple[object, ...]) -> RetryRow:
    child_id, parent_id, created_at, *counts = row
    return RetryRow(child_id, parent_id, created_at, ResultCounts(*counts))  # type: ignore[arg-type]


def _params(
    db: sqlite3.Connection, params: bytes, file_id: str | None, start: int, end: int
) -> bytes | InputSpan:
    """A chunk's params: stored, or read from the input file its chunk refers to."""
    if file_id is None:
        return params
    return openai_tables.span_in_file(db, "?", file_id, start, end, _span_reader(db))


def _span_reader(db: sqlite3.Connection) -> openai_tables.SpanReader:
    """Reads a piece's span in place (incremental blob I/O): substr() would first load the
    whole piece, 4 MB, to copy a part of it."""

    def read(file_id: str, piece: int, low: int, high: int) -> bytes:
        [(rowid,)] = db.execute(
            "SELECT rowid FROM file_pieces WHERE file_id = ? AND piece = ?", (file_id, piece)
        ).fetchall()
        with db.blobopen("file_pieces", "data", rowid, readonly=True) as blob:
            blob.seek(low)
            return blob.read(high - low)

    return read


def _drop_requests(db: sqlite3.Connection, batch_id: str) -> None:
    """Deletes the batch's requests, and the bytes of the input files only they referred to."""
    files = db.execute(
        "DELETE FROM chunk_requests WHERE batch_id = ? RETURNING file_id", (batch_id,)
    ).fetchall()
    openai_tables.drop_unreferenced_bytes(db, "?", (file_id for (file_id,) in files))


def _insert_retry(db: sqlite3.Connection, retry: RetryRow) -> None:
    if db.execute("SELECT 1 FROM retries WHERE parent_id = ?", (retry.parent_id,)).fetchone():
        raise WrongState(
            f"Batch {retry.parent_id} has been retried already: retry its retry batch instead."
        )
    counts = retry.retried
    db.execute(
        f"INSERT INTO retries ({RETRY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            retry.child_id, retry.parent_id, retry.created_at,
            counts.succeeded, counts.errored, counts.canceled, counts.expired,
        ),
    )  # fmt: skip


@raises_store_unavailable(unavailable_error)
class SQLiteStore:
    point_reads_inline = True

    def __init__(self, path: str) -> None:
        self.location = f"the SQLite database {path}"
        self._path = path
        self._write_lock = threading.Lock()
        self._local = threading.local()
        # One process per SQLite file: announcing work is a plain in-process call.
        self._work_callbacks: list[Callable[[], object]] = []
        self._part_callbacks: list[Callable[[str], object]] = []
        self._event_callbacks: list[Callable[[str], object]] = []
        # Deliveries leased before this store opened belong to a process that is gone.
        self._abandoned_deliveries_recovered = False
        # Leases older than this store belong to a process that is gone; later ones, to this
        # process's engines.
        self._abandoned_recovered = False
        self._writer = self._connect()
        # One process serves the file: it brings the schema up to date itself (and refuses a
        # file a newer batchgate wrote).
        try:
            # The versions this open applied, for `batchgate migrate` to report.
            self.upgraded = upgrade(self._writer, path)
        except BaseException:
            self._writer.close()
            raise
        # Checkpoints copy the WAL into the database file and fsync it. Left to the writer they
        # stall a commit every few megabytes; a thread of their own runs them beside the writes.
        self._writer.execute("PRAGMA wal_autocheckpoint=0")
        self._closed = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_regularly, name="sqlite-checkpoint", daemon=True
        )
        self._checkpointer.start()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self._path, isolation_level=None, check_same_thread=False, timeout=30
        )
        # Result and request blobs are large: big pages keep their overflow chains short.
        connection.execute("PRAGMA page_size=32768")
        connection.execute("PRAGMA journal_mode=WAL")
        # NORMAL is crash-safe in WAL mode: a killed process loses nothing committed. Creates
        # switch to FULL so that an accepted batch also survives power loss.
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA busy_timeout=30000")
        # The WAL file keeps the size of its largest run between checkpoints (a 250 MB create,
        # say) unless told otherwise: past this, it is cut back once checkpointed.
        connection.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
        return connection

    def _checkpoint_regularly(self) -> None:
        connection = self._connect()
        failing = False
        while not self._closed.wait(CHECKPOINT_SECONDS):
            try:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.OperationalError as error:
                # A full disk, say: the WAL holds the commits meanwhile, a later checkpoint
                # copies them.
                if not failing:
                    log.warning(
                        "checkpoint failed, retrying every %.0f s: %s", CHECKPOINT_SECONDS, error
                    )
                failing = True
            else:
                failing = False
        connection.close()

    @property
    def _reader(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
        return connection

    @contextlib.contextmanager
    def _transaction(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """A write transaction; `durable` ones also survive power loss (synchronous=FULL)."""
        with self._write_lock:
            if durable:
                self._writer.execute("PRAGMA synchronous=FULL")
            try:
                self._writer.execute("BEGIN IMMEDIATE")
                try:
                    yield self._writer
                    self._writer.execute("COMMIT")
                except BaseException:
                    # A COMMIT that failed (disk full, I/O error) can leave the transaction
                    # open; a ROLLBACK that fails too leaves nothing more to undo.
                    if self._writer.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            self._writer.execute("ROLLBACK")
                    raise
            finally:
                if durable:
                    self._writer.execute("PRAGMA synchronous=NORMAL")

    def ping(self) -> None:
        self._reader.execute("SELECT 1").fetchone()

    # --- API side -------------------------------------------------------------------------

    def create_batch(
        self,
        batch_id: str,
        owner: str,
        created_at: float,
        expires_at: float,
        total: int,
        chunks: Iterable[NewChunk],
        retry_of: RetryRow | None = None,
        options: BatchOptions = NO_OPTIONS,
    ) -> BatchRow:
        with self._transaction(durable=True) as db:
            if retry_of is not None:
                _insert_retry(db, retry_of)
            db.execute(
                "INSERT INTO batches (id, owner, status, total, processing, created_at,"
                " expires_at, metadata, priority, abort_policy, webhook_url)"
                " VALUES (?, ?, 'in_progress', ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    batch_id, owner, total, total, created_at, expires_at,
                    as_json(options.metadata), options.priority, as_json(options.abort_policy),
                    options.webhook_url,
                ),
            )  # fmt: skip
            db.executemany(
                "INSERT INTO batch_labels (owner, key, value, batch_id) VALUES (?, ?, ?, ?)",
                ((owner, key, value, batch_id) for key, value in (options.metadata or {}).items()),
            )
            if options.idempotency_key is not None:
                db.execute(
                    "UPDATE idempotency_keys SET batch_id = ? WHERE owner = ? AND key = ?",
                    (batch_id, owner, options.idempotency_key),
                )
            if options.openai is not None:
                openai_tables.insert_openai_batch(db, "?", options.openai)
            counts: list[int] = []
            files: set[str] = set()

            def request_rows() -> Iterator[tuple[object, ...]]:
                # Each chunk is built just before it is written, never all at once.
                for number, chunk in enumerate(chunks):
                    counts.append(chunk.count)
                    if chunk.file_id is not None:
                        files.add(chunk.file_id)
                    yield (
                        batch_id, number, chunk.custom_ids, chunk.params,
                        chunk.file_id, chunk.file_start, chunk.file_end,
                    )  # fmt: skip

            db.executemany(
                "INSERT INTO chunk_requests (batch_id, chunk_no, custom_ids, params, file_id,"
                " file_start, file_end) VALUES (?, ?, ?, ?, ?, ?, ?)",
                request_rows(),
            )
            for file_id in files:
                openai_tables.hold_input_file(db, "?", file_id)
            db.executemany(
                "INSERT INTO chunks (batch_id, chunk_no, count, priority) VALUES (?, ?, ?, ?)",
                (
                    (batch_id, number, count, options.priority)
                    for number, count in enumerate(counts)
                ),
            )
            batch = BatchRow.new(batch_id, total, created_at, expires_at, options, retry_of)
            EVENTS.write(db, owner, batch, CREATED, created_at)
        self._events_written(owner)
        return batch

    def get_batch(self, owner: str, batch_id: str) -> BatchRow | None:
        row = self._reader.execute(
            f"SELECT {BATCH_COLUMNS} FROM batches WHERE id = ? AND owner = ?", (batch_id, owner)
        ).fetchone()
        return None if row is None else batch_row(row)

    def find_batch(self, batch_id: str) -> BatchRow | None:
        row = self._reader.execute(
            f"SELECT {BATCH_COLUMNS} FROM batches WHERE id = ?", (batch_id,)
        ).fetchone()
        return None if row is None else batch_row(row)

    def list_batches(
        self,
        owner: str,
        limit: int,
        after_id: str | None,
        before_id: str | None,
        only: BatchFilter = EVERY_BATCH,
    ) -> tuple[list[BatchRow], bool]:
        # Ids sort by creation time, so they double as cursors even once deleted.
        newer = before_id is not None
        statement, parameters = list_page_query(
            owner,
            only,
            before_id if newer else after_id,
            newer,
            limit + 1,
            "?",
            BLOB_CONTAINS,
            USAGE_ARRAY,
        )
        rows = self._reader.execute(statement, parameters).fetchall()
        page = [batch_row(row) for row in rows[:limit]]
        if newer:
            page.reverse()
        return page, len(rows) > limit

    def cancel_batch(
        self, owner: str | None, batch_id: str, now: float, reason: Mapping[str, Any]
    ) -> BatchRow | None:
        with self._transaction() as db:
            status = db.execute(
                "SELECT status FROM batches WHERE id = ? AND owner = coalesce(?, owner)",
                (batch_id, owner),
            ).fetchone()
            if status is None:
                return None
            if status[0] == "ended":
                raise WrongState(f"Batch {batch_id} has already ended and cannot be canceled.")
            if status[0] == "in_progress":
                db.execute(
                    "UPDATE batches SET status = 'canceling', cancel_initiated_at = ?,"
                    " cancel_reason = ? WHERE id = ?",
                    (now, as_json(reason), batch_id),
                )
                db.execute(
                    "UPDATE chunks SET urgent = 1 WHERE batch_id = ? AND state < 2", (batch_id,)
                )
            row = db.execute(
                f"SELECT {BATCH_COLUMNS}, owner FROM batches WHERE id = ?", (batch_id,)
            ).fetchone()
            batch = batch_row(row[:-1])
            if status[0] == "in_progress":
                EVENTS.write(db, row[-1], batch, CANCELING, now)
        if status[0] == "in_progress":
            self._events_written(row[-1])
        return batch

    def delete_batch(self, owner: str, batch_id: str) -> bool:
        with self._transaction() as db:
            row = db.execute(
                "SELECT status FROM batches WHERE id = ? AND owner = ?", (batch_id, owner)
            ).fetchone()
            if row is None:
                return False
            if row[0] != "ended":
                raise WrongState(
                    f"Batch {batch_id} is still {row[0]}; only ended batches can be deleted."
                    " Cancel it first."
                )
            child = db.execute(
                "SELECT child_id FROM retries WHERE parent_id = ?", (batch_id,)
            ).fetchone()
            if child is not None:
                raise WrongState(
                    f"Batch {batch_id} has a retry batch, {child[0]}: delete that first, or"
                    " pass cascade=true to delete the whole retry chain."
                )
            [row] = db.execute(
                f"SELECT {BATCH_COLUMNS} FROM batches WHERE id = ?", (batch_id,)
            ).fetchall()
            batch = batch_row(row)
            EVENTS.write(db, owner, batch, DELETED, time.time())
            db.execute("DELETE FROM retries WHERE child_id = ?", (batch_id,))
            db.execute("DELETE FROM results WHERE batch_id = ?", (batch_id,))
            _drop_requests(db, batch_id)
            db.execute("DELETE FROM chunks WHERE batch_id = ?", (batch_id,))
            db.execute("DELETE FROM batch_labels WHERE batch_id = ?", (batch_id,))
            db.execute("DELETE FROM batch_usage WHERE batch_id = ?", (batch_id,))
            db.execute("DELETE FROM batches WHERE id = ?", (batch_id,))
        self._events_written(owner)
        return True

    def iter_results(self, batch_id: str) -> Iterator[bytes]:
        position = (-1, -1)
        while True:
            rows = self._reader.execute(
                "SELECT chunk_no, part, lines FROM results WHERE batch_id = ?"
                " AND (chunk_no, part) > (?, ?) ORDER BY chunk_no, part LIMIT ?",
                (batch_id, *position, RESULT_PARTS_PER_READ),
            ).fetchall()
            for chunk_no, part, lines in rows:
                position = (chunk_no, part)
                yield lines
            if len(rows) < RESULT_PARTS_PER_READ:
                return

    def iter_request_chunks(self, batch_id: str) -> Iterator[StoredChunk]:
        chunk_no = -1
        while True:
            row = self._reader.execute(
                f"SELECT chunk_no, custom_ids, {REQUEST_FIELDS} FROM chunk_requests"
                " WHERE batch_id = ? AND chunk_no > ? ORDER BY chunk_no LIMIT 1",
                (batch_id, chunk_no),
            ).fetchone()
            if row is None:
                return
            chunk_no, custom_ids, *requests = row
            params = _params(self._reader, *requests)
            if not isinstance(params, bytes):
                params = params_array(params.request_lines())
            parts = self._reader.execute(
                "SELECT lines FROM results WHERE batch_id = ? AND chunk_no = ? ORDER BY part",
                (batch_id, chunk_no),
            ).fetchall()
            yield StoredChunk(custom_ids, params, b"".join(lines for (lines,) in parts))

    def last_part_position(self, batch_id: str) -> int:
        row = self._reader.execute(
            "SELECT coalesce(max(rowid), 0) FROM results WHERE batch_id = ?", (batch_id,)
        ).fetchone()
        return int(row[0])

    def iter_parts_after(self, batch_id: str, after: int) -> Iterator[CommittedPart]:
        # The rowid is the commit order: one writer, and a new row's rowid exceeds every other's.
        while True:
            rows = self._reader.execute(
                "SELECT rowid, lines FROM results WHERE batch_id = ? AND rowid > ?"
                " ORDER BY rowid LIMIT ?",
                (batch_id, after, RESULT_PARTS_PER_READ),
            ).fetchall()
            for position, lines in rows:
                yield CommittedPart(position, lines)
                after = position
            if len(rows) < RESULT_PARTS_PER_READ:
                return

    def on_parts_committed(self, callback: Callable[[str], object]) -> None:
        self._part_callbacks.append(callback)

    def retries_of(self, batch_ids: Sequence[str]) -> list[RetryRow]:
        marks = ",".join("?" * len(batch_ids))
        rows = self._reader.execute(
            f"SELECT {RETRY_COLUMNS} FROM retries"
            f" WHERE parent_id IN ({marks}) OR child_id IN ({marks})",
            (*batch_ids, *batch_ids),
        ).fetchall()
        return [_retry(row) for row in rows]

    # --- engine side ----------------------------------------------------------------------

    def lease_chunks(
        self, worker_id: str, limit: int, now: float, lease_seconds: float
    ) -> list[LeasedChunk]:
        with self._transaction() as db:
            keys = db.execute(
                f"SELECT batch_id, chunk_no FROM ({QUEUE_IN_TURNS}) ORDER BY position LIMIT ?",
                (now, now, limit),
            ).fetchall()
            leased: list[tuple[LeasedChunk, list[Any]]] = []
            for batch_id, chunk_no in keys:
                db.execute(
                    "UPDATE chunks SET state = 1, lease_owner = ?, lease_expires = ?"
                    " WHERE batch_id = ? AND chunk_no = ?",
                    (worker_id, now + lease_seconds, batch_id, chunk_no),
                )
                custom_ids, status, expires_at, abort_policy, owner, endpoint, *requests = (
                    db.execute(
                        "SELECT custom_ids, status, expires_at, abort_policy, owner,"
                        " (SELECT endpoint FROM openai_batches o WHERE o.id = batches.id),"
                        f" {REQUEST_FIELDS} FROM chunk_requests"
                        " JOIN batches ON batches.id = batch_id"
                        " WHERE batch_id = ? AND chunk_no = ?",
                        (batch_id, chunk_no),
                    ).fetchone()
                )
                done: set[int] = set()
                next_part = 0
                for part, indices in db.execute(
                    "SELECT part, indices FROM results WHERE batch_id = ? AND chunk_no = ?",
                    (batch_id, chunk_no),
                ):
                    done.update(orjson.loads(indices))
                    next_part = max(next_part, part + 1)
                chunk = LeasedChunk(
                    batch_id,
                    owner,
                    chunk_no,
                    custom_ids,
                    requests[0],
                    status,
                    expires_at,
                    frozenset(done),
                    next_part,
                    None if abort_policy is None else orjson.loads(abort_policy),
                    endpoint,
                )
                leased.append((chunk, requests))
        # Lines of an input file are read after the commit, on this thread's reader: they never
        # change while a chunk refers to them, and the writer is not held meanwhile.
        return [
            chunk
            if requests[1] is None
            else dataclasses.replace(chunk, params=_params(self._reader, *requests))
            for chunk, requests in leased
        ]

    # --- the OpenAI Batch API ----------------------------------------------------------------

    def create_file(
        self,
        file: FileRow,
        pieces: Iterable[bytes],
        lines: Callable[[], InputLines | None] = lambda: None,
    ) -> None:
        with self._transaction(durable=True) as db:
            openai_tables.insert_file(db, "?", file, pieces, lines)

    def add_file_piece(self, file_id: str, number: int, data: bytes) -> None:
        with self._transaction() as db:
            openai_tables.insert_piece(db, "?", file_id, number, data)

    def commit_file(self, file: FileRow, lines: InputLines | None) -> None:
        # Syncing the write-ahead log syncs the pieces' commits before this one too.
        with self._transaction(durable=True) as db:
            openai_tables.insert_file_row(db, "?", file, lines)

    def discard_file_pieces(self, file_id: str) -> None:
        with self._transaction() as db:
            openai_tables.drop_unreferenced_bytes(db, "?", [file_id])

    def delete_abandoned_uploads(self, before_id: str) -> int:
        with self._transaction() as db:
            return openai_tables.delete_abandoned_uploads(db, "?", before_id)

    def input_lines(self, file_id: str) -> InputLines | None:
        return openai_tables.input_lines(self._reader, "?", file_id)

    def get_file(self, owner: str, file_id: str) -> FileRow | None:
        return openai_tables.get_file(self._reader, "?", owner, file_id)

    def list_files(
        self, owner: str, purpose: str | None, after: str | None, limit: int, ascending: bool
    ) -> tuple[list[FileRow], bool]:
        return openai_tables.list_files(self._reader, "?", owner, purpose, after, limit, ascending)

    def iter_file(self, file_id: str) -> Iterator[bytes]:
        def read(file_id: str, after: int) -> list[bytes]:
            return openai_tables.file_pieces(self._reader, "?", file_id, after)

        return openai_tables.iter_pieces(read, file_id)

    def delete_file(self, owner: str, file_id: str) -> bool:
        with self._transaction() as db:
            return openai_tables.delete_file(db, "?", owner, file_id)

    def delete_expired_files(self, now: float) -> int:
        with self._transaction() as db:
            return openai_tables.delete_expired_files(db, "?", now)

    def save_failed_openai_batch(self, batch: OpenAIBatchRow) -> None:
        with self._transaction(durable=True) as db:
            openai_tables.insert_openai_batch(db, "?", batch)
            EVENTS.write_openai_failed(db, batch.owner, batch.id, batch.created_at)
        self._events_written(batch.owner)

    def get_openai_batch(self, owner: str, batch_id: str) -> OpenAIBatchRow | None:
        return openai_tables.get_openai_batch(self._reader, "?", owner, batch_id)

    def list_openai_batches(
        self, owner: str, after: str | None, limit: int, before: str | None = None
    ) -> tuple[list[OpenAIBatchRow], bool]:
        return openai_tables.list_openai_batches(self._reader, "?", owner, after, limit, before)

    def results_bytes(self, batch_id: str) -> int:
        return openai_tables.results_bytes(self._reader, "?", batch_id)

    def record_output_files(self, batch: OpenAIBatchRow, files: Sequence[FileRow]) -> None:
        with self._transaction() as db:
            openai_tables.record_output_files(db, "?", batch, files)

    def renew_leases(
        self, worker_id: str, chunks: Sequence[tuple[str, int]], now: float, lease_seconds: float
    ) -> None:
        with self._transaction() as db:
            db.executemany(
                "UPDATE chunks SET lease_expires = ? WHERE batch_id = ? AND chunk_no = ?"
                " AND state = 1 AND lease_owner = ?",
                ((now + lease_seconds, *key, worker_id) for key in chunks),
            )

    def register_engine(self, worker_id: str) -> None:
        """Nothing to do: no other process shares the file."""

    def recover_abandoned_chunks(self) -> int:
        if self._abandoned_recovered:
            return 0
        with self._transaction() as db:
            recovered = db.execute(
                "UPDATE chunks SET state = 0, lease_owner = NULL WHERE state = 1"
            ).rowcount
        self._abandoned_recovered = True
        return recovered

    def release_leases(self, worker_id: str, only: tuple[str, int] | None = None) -> int:
        query = (
            "UPDATE chunks SET state = 0, lease_owner = NULL, lease_expires = NULL"
            " WHERE state = 1 AND lease_owner = ?"
        )
        if only is not None:
            query += " AND batch_id = ? AND chunk_no = ?"
        with self._transaction() as db:
            return db.execute(query, (worker_id, *(only or ()))).rowcount

    def announce_work(self) -> None:
        for callback in self._work_callbacks:
            callback()

    def on_work_announced(self, callback: Callable[[], object]) -> None:
        self._work_callbacks.append(callback)

    def save_part(self, worker_id: str, part: ResultPart, now: float) -> bool:
        counts = part.counts
        status = None
        # The workspace of the event the part wrote, if it wrote one.
        owner: str | None = None
        indices = orjson.dumps(list(part.indices))
        with self._transaction() as db:
            chunk = db.execute(
                "SELECT state, lease_owner FROM chunks WHERE batch_id = ? AND chunk_no = ?",
                (part.batch_id, part.chunk_no),
            ).fetchone()
            if chunk != (1, worker_id):
                saved = db.execute(
                    "SELECT indices FROM results WHERE batch_id = ? AND chunk_no = ? AND part = ?",
                    (part.batch_id, part.chunk_no, part.part),
                ).fetchone()
                return committed_before(
                    part,
                    indices,
                    None if saved is None else saved[0],
                    None if chunk is None else chunk[0],
                )
            if part.indices:
                inserted = db.execute(
                    "INSERT INTO results (batch_id, chunk_no, part, indices, lines)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING part",
                    (part.batch_id, part.chunk_no, part.part, indices, part.lines),
                ).fetchall()
                if not inserted:
                    # The number is taken. If by this very part, it was committed in a try whose
                    # answer was lost (counted then); if by another, the chunk ran elsewhere
                    # meanwhile and came back to this worker, whose parts are stale.
                    saved = db.execute(
                        "SELECT indices FROM results WHERE batch_id = ? AND chunk_no = ?"
                        " AND part = ?",
                        (part.batch_id, part.chunk_no, part.part),
                    ).fetchone()
                    return saved is not None and bytes(saved[0]) == indices
                db.executemany(
                    USAGE_UPSERT,
                    (
                        (part.batch_id, model, *dataclasses.astuple(usage))
                        for model, usage in part.usage
                    ),
                )
                [(status,)] = db.execute(
                    "UPDATE batches SET processing = processing - ?, succeeded = succeeded + ?,"
                    " errored = errored + ?, canceled = canceled + ?, expired = expired + ?,"
                    " status = CASE WHEN processing = ? THEN 'ended' ELSE status END,"
                    " ended_at = CASE WHEN processing = ? THEN ? ELSE ended_at END"
                    " WHERE id = ? RETURNING status",
                    (
                        counts.total,
                        counts.succeeded,
                        counts.errored,
                        counts.canceled,
                        counts.expired,
                        counts.total,
                        counts.total,
                        now,
                        part.batch_id,
                    ),
                ).fetchall()
                if status == "ended" or EVENTS.progress_due(db, part.batch_id, now):
                    row = db.execute(
                        f"SELECT {BATCH_COLUMNS}, owner FROM batches WHERE id = ?",
                        (part.batch_id,),
                    ).fetchone()
                    owner = row[-1]
                    batch = batch_row(row[:-1])
                    EVENTS.write(db, owner, batch, ENDED if status == "ended" else PROGRESS, now)
            if part.chunk_done:
                db.execute(
                    "UPDATE chunks SET state = 2, lease_owner = NULL, lease_expires = NULL"
                    " WHERE batch_id = ? AND chunk_no = ?",
                    (part.batch_id, part.chunk_no),
                )
        if status is not None:
            for callback in self._part_callbacks:
                callback(part.batch_id)
        if owner is not None:
            self._events_written(owner)
        if status == "ended":
            log.info("batch ended", extra={"batch_id": part.batch_id})
        return True

    def count_batches_by_status(self) -> dict[str, int]:
        rows = self._reader.execute("SELECT status, count(*) FROM batches GROUP BY status")
        return {status: count for status, count in rows}

    def canceling_batch_ids(self) -> set[str]:
        return {
            row[0]
            for row in self._reader.execute("SELECT id FROM batches WHERE status = 'canceling'")
        }

    def expedite_overdue(self, now: float) -> int:
        with self._transaction() as db:
            return db.execute(
                "UPDATE chunks SET urgent = 1 WHERE state < 2 AND urgent = 0 AND batch_id IN"
                " (SELECT id FROM batches WHERE status != 'ended' AND expires_at <= ?)",
                (now,),
            ).rowcount

    def archive_older_than(self, created_before: float, now: float) -> int:
        with self._transaction() as db:
            ids = db.execute(
                "SELECT id, owner FROM batches WHERE status = 'ended' AND archived_at IS NULL"
                " AND created_at < ?",
                (created_before,),
            ).fetchall()
            for batch_id, owner in ids:
                db.execute("DELETE FROM results WHERE batch_id = ?", (batch_id,))
                _drop_requests(db, batch_id)
                db.execute("DELETE FROM chunks WHERE batch_id = ?", (batch_id,))
                openai_tables.delete_output_files(db, "?", [batch_id])
                batch = batch_row(
                    db.execute(
                        "UPDATE batches SET archived_at = ? WHERE id = ?"
                        f" RETURNING {BATCH_COLUMNS}",
                        (now, batch_id),
                    ).fetchone()
                )
                EVENTS.write(db, owner, batch, ARCHIVED, now)
        for owner in {owner for _, owner in ids}:
            self._events_written(owner)
        return len(ids)

    # --- idempotency keys --------------------------------------------------------------------

    def claim_idempotency_key(
        self,
        owner: str,
        key: str,
        digest: str,
        now: float,
        expired_before: float,
        abandoned_before: float,
    ) -> IdempotencyRecord | None:
        with self._transaction() as db:
            db.execute(
                "DELETE FROM idempotency_keys WHERE owner = ? AND key = ?"
                " AND (created_at < ? OR (batch_id IS NULL AND created_at < ?))",
                (owner, key, expired_before, abandoned_before),
            )
            held = db.execute(
                "INSERT INTO idempotency_keys (owner, key, digest, created_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING key",
                (owner, key, digest, now),
            ).fetchall()
            if held:
                return None
            record = db.execute(
                "SELECT digest, batch_id FROM idempotency_keys WHERE owner = ? AND key = ?",
                (owner, key),
            ).fetchone()
            return IdempotencyRecord(*record)

    def release_idempotency_key(self, owner: str, key: str, digest: str) -> None:
        with self._transaction() as db:
            db.execute(
                "DELETE FROM idempotency_keys WHERE owner = ? AND key = ? AND digest = ?"
                " AND batch_id IS NULL",
                (owner, key, digest),
            )

    def forget_idempotency_keys(self, created_before: float) -> int:
        with self._transaction() as db:
            return db.execute(
                "DELETE FROM idempotency_keys WHERE created_at < ?", (created_before,)
            ).rowcount

    # --- usage -------------------------------------------------------------------------------

    def usage_report(
        self, owner: str, starting_at: float, ending_at: float
    ) -> tuple[list[UsageReportRow], list[OutcomeReportRow]]:
        scope = (owner, starting_at, ending_at)
        tokens_query, outcomes_query = USAGE_REPORT
        tokens = [
            UsageReportRow(day, model, TokenUsage(*usage))
            for day, model, *usage in self._reader.execute(tokens_query, scope).fetchall()
        ]
        outcomes = [
            OutcomeReportRow(day, ResultCounts(*counts))
            for day, *counts in self._reader.execute(outcomes_query, scope).fetchall()
        ]
        return tokens, outcomes

    # --- events and webhooks ------------------------------------------------------------------

    def _events_written(self, owner: str) -> None:
        for callback in self._event_callbacks:
            callback(owner)

    def last_event_number(self, owner: str) -> int:
        return EVENTS.last_number(self._reader, owner)

    def forget_events(self, progress_before: float, before: float) -> int:
        with self._transaction() as db:
            return EVENTS.forget(db, progress_before, before, FORGOTTEN_PER_CALL)

    def on_events_written(self, callback: Callable[[str], object]) -> None:
        self._event_callbacks.append(callback)

    def events_after(
        self, owner: str, after: int, batch_id: str | None, limit: int
    ) -> list[BatchEvent]:
        return EVENTS.events_after(self._reader, owner, after, batch_id, limit)

    def create_webhook(self, webhook: WebhookRow) -> None:
        with self._transaction() as db:
            EVENTS.create_webhook(db, webhook)

    def webhooks(self, owner: str) -> list[WebhookRow]:
        return EVENTS.webhooks(self._reader, owner)

    def delete_webhook(self, owner: str, webhook_id: str) -> bool:
        with self._transaction() as db:
            return EVENTS.delete_webhook(db, owner, webhook_id)

    def rotate_webhook_secret(
        self, owner: str, webhook_id: str, secret: str, previous_until: float
    ) -> WebhookRow | None:
        with self._transaction() as db:
            return EVENTS.rotate_secret(db, owner, webhook_id, secret, previous_until)

    def workspace_webhook_secret(self, owner: str, candidate: str) -> str:
        with self._transaction() as db:
            return EVENTS.workspace_secret(db, owner, candidate)

    def deliveries(
        self, owner: str, webhook_id: str, limit: int, before_id: int | None
    ) -> list[DeliveryRow]:
        return EVENTS.deliveries(self._reader, owner, webhook_id, limit, before_id)

    def batch_deliveries(self, owner: str, batch_id: str, limit: int) -> list[DeliveryRow]:
        return EVENTS.batch_deliveries(self._reader, owner, batch_id, limit)

    def redeliver(self, owner: str, webhook_id: str, delivery_id: int, now: float) -> bool:
        with self._transaction() as db:
            redelivered = EVENTS.redeliver(db, owner, webhook_id, delivery_id, now)
        if redelivered:
            self._events_written(owner)
        return redelivered

    def lease_deliveries(
        self, worker_id: str, limit: int, now: float, lease_seconds: float
    ) -> list[LeasedDelivery]:
        with self._transaction() as db:
            if not self._abandoned_deliveries_recovered:
                db.execute(
                    "UPDATE webhook_deliveries SET lease_owner = NULL, lease_expires = NULL"
                    " WHERE lease_owner IS NOT NULL"
                )
                self._abandoned_deliveries_recovered = True
            return EVENTS.lease(db, worker_id, limit, now, lease_seconds)

    def finish_attempt(self, worker_id: str, delivery_id: int, outcome: DeliveryOutcome) -> bool:
        with self._transaction() as db:
            return EVENTS.finish(db, worker_id, delivery_id, outcome)

    # --- API keys ------------------------------------------------------------------------------

    def create_api_key(self, key: ApiKeyRow) -> None:
        with self._transaction() as db:
            db.execute(
                f"INSERT INTO api_keys ({API_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                dataclasses.astuple(key),
            )

    def api_keys(self) -> list[ApiKeyRow]:
        rows = self._reader.execute(
            f"SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY created_at, id"
        ).fetchall()
        return [_api_key(row) for row in rows]

    def revoke_api_key(self, key_id: str, now: float) -> ApiKeyRow | None:
        with self._transaction() as db:
            # fetchall: a RETURNING statement must run to its end before the commit.
            rows = db.execute(
                f"UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?"
                f" RETURNING {API_KEY_COLUMNS}",
                (now, key_id),
            ).fetchall()
        return _api_key(rows[0]) if rows else None

    def close(self) -> None:
        self._closed.set()
        self._checkpointer.join()
        self._writer.close()

    def schema_problem(self) -> str | None:
        # Only a newer batchgate's `migrate` run on the file meanwhile can change its schema.
        status = schema_status(self._reader)
        if status.is_current:
            return None
        return newer_schema_problem(status, self.location) or (
            f"The schema of {self.location} is no longer the one this process upgraded it to:"
            f" {status.describe()}."
        )


def _api_key(row: tuple[Any, ...]) -> ApiKeyRow:
    """SQLite keeps read_only as 0 or 1."""
    return dataclasses.replace(ApiKeyRow(*row), read_only=bool(row[-1]))
