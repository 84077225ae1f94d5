"""The shared store: PostgreSQL, for any number of API and worker processes on any machines.

The layout is the SQLite store's (chunks of requests, results in parts; see storage/base.py),
created by `batchgate migrate` (storage/migrations). What changes is that many writers run at once:

- Workers lease chunks with FOR UPDATE SKIP LOCKED, so two never get the same chunk and none
  waits for another.
- A part commits only while its worker holds the chunk's lease, checked under the chunk's row
  lock. A new lease takes that lock too, so once a chunk changes hands its old worker can write
  nothing more: each request ends exactly once, and the batch's counters with it.
- An engine that dies gives up its leases within a second or two, not when they lapse: it
  holds a lock that PostgreSQL drops with its connection, and the other engines put the chunks
  of lease owners without one back in the queue (storage/postgres_presence.py).
- Nothing waits in a cycle, so there are no deadlocks: save_part locks its chunk row, then its
  batch row; a cancel commits its batch update before it touches chunks; statements over many
  chunks skip locked rows instead of waiting; delete and archive lock only ended batches, which
  no part writes to any more.
"""

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import orjson
import psycopg
from psycopg import sql
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

from batchgate.lifecycle.events import (
    ARCHIVED,
    CANCELING,
    CREATED,
    DELETED,
    ENDED,
    PROGRESS,
    has_event,
)
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
from batchgate.storage.migrations import SchemaStatus, known_versions
from batchgate.storage.migrations.postgres import (
    CONNECT_TIMEOUT_SECONDS,
    applied_versions,
    describe,
    require_current_schema,
    schema_problem,
)
from batchgate.storage.openai_tables import FileRow, InputLines, OpenAIBatchRow
from batchgate.storage.postgres_presence import (
    EVENTS_CHANNEL,
    PARTS_CHANNEL,
    RECOVER_ABANDONED_DELIVERIES,
    WORK_CHANNEL,
    WorkListener,
    abandoned_lease_owners,
)
from batchgate.storage.unavailable import raises_store_unavailable

log = logging.getLogger("batchgate.storage")
# The pool warns on every failed connection attempt, several a second while the database is
# away; the engine and the API report an outage themselves, once (engine/outages.py).
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

USAGE_ARRAY = "coalesce(json_agg(json_build_array({}))::text, '[]')"
BATCH_COLUMNS = sql.SQL(batch_columns("batches", USAGE_ARRAY))
USAGE_UPSERT = usage_upsert("%s")
QUEUE_IN_TURNS = queue_in_turns("%s")
USAGE_REPORT = usage_report_queries("floor(b.created_at / 86400)::bigint", "%s")
BLOB_CONTAINS = "position({needle} in {blob}) > 0"  # list_page_query's custom_id search
RESULT_PARTS_PER_READ = 8
# A chunk's params, or the lines of an input file it refers to instead (_params).
REQUEST_FIELDS = "params, file_id, file_start, file_end"
EVENTS = EventTables("%s", " FOR UPDATE SKIP LOCKED")
# Old events deleted by one call: transactions stay short.
FORGOTTEN_PER_CALL = 1000
# Archiving deletes every part of a batch: a bounded number per call keeps transactions short.
ARCHIVE_BATCHES_PER_CALL = 100
PING_TIMEOUT_SECONDS = 2.0
# The tables of the schema; a probe of /readyz notices one dropped.
TABLES = (
    "batches",
    "chunk_requests",
    "chunks",
    "results",
    "api_keys",
    "batch_labels",
    "batch_usage",
    "idempotency_keys",
    "retries",
    "batch_events",
    "webhooks",
    "webhook_secrets",
    "webhook_deliveries",
    "files",
    "file_pieces",
    "input_file_lines",
    "openai_batches",
)
RETRY_COLUMNS = sql.SQL(
    "child_id, parent_id, created_at,"
    " retried_succeeded, retried_errored, retried_canceled, retried_expired"
)
API_KEY_COLUMNS = sql.SQL("id, workspace, prefix, key_hash, created_at, revoked_at, read_only")
# How long a call waits for a pooled connection before it fails: while the database is away
# the API answers 503 after this long, instead of holding the client for the pool's 30 s.
CHECKOUT_TIMEOUT_SECONDS = 5.0
# The pool retries a lost connection with a doubling delay until this long has passed, then
# gives up on it and connects again when a call next waits for one. Left at the pool's 5 min, an
# outage of 8 s could leave the pool asleep for 8 s more after the database came back (its
# attempts at 1, 3, 7, 15 s), every call answered 503 meanwhile; this caps the wait at ~2 s.
RECONNECT_GIVE_UP_SECONDS = 4.0


def _batch_or_none(row: Any) -> BatchRow | None:
    return None if row is None else batch_row(row)


def unavailable_error(error: Exception) -> type[StoreUnavailable] | None:
    """Connection failures, a server shutting down, a pool with no connection to give, a full
    disk: every OperationalError (SQLSTATE classes 08, 53, 57, 40...), never a constraint."""
    if isinstance(error, psycopg.errors.DiskFull):
        return StoreFull
    return StoreUnavailable if isinstance(error, psycopg.OperationalError) else None


@raises_store_unavailable(unavailable_error)
class PostgresStore:
    point_reads_inline = False

    def __init__(self, database_url: str, pool_size: int = 10) -> None:
        self.location = f"the PostgreSQL {describe(database_url)}"
        require_current_schema(database_url)
        self._database_url = database_url
        self._schema_versions = known_versions("postgres")
        # autocommit: a lone statement is its own transaction, with no BEGIN/COMMIT round trips.
        self._pool: ConnectionPool[psycopg.Connection[TupleRow]] = ConnectionPool(
            database_url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_SECONDS},
            timeout=CHECKOUT_TIMEOUT_SECONDS,
            reconnect_timeout=RECONNECT_GIVE_UP_SECONDS,
            # One round trip per checkout: a connection broken by a database restart is replaced
            # instead of failing the call that drew it.
            check=ConnectionPool.check_connection,
            name="batchgate",
            open=True,
        )
        self._listener: WorkListener | None = None
        self._parts_listener: WorkListener | None = None
        self._events_listener: WorkListener | None = None
        self._listener_lock = threading.Lock()

    def ping(self) -> None:
        # Readiness probes want an answer within their own timeout, not the pool's 30 s wait.
        with self._pool.connection(timeout=PING_TIMEOUT_SECONDS) as db:
            db.execute("SELECT 1")

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
        with self._pool.connection() as db, db.transaction():
            if retry_of is not None:
                _insert_retry(db, retry_of)
            db.execute(
                "INSERT INTO batches (id, owner, status, total, processing, created_at,"
                " expires_at, metadata, priority, abort_policy, webhook_url)"
                " VALUES (%s, %s, 'in_progress', %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    batch_id, owner, total, total, created_at, expires_at,
                    as_json(options.metadata), options.priority, as_json(options.abort_policy),
                    options.webhook_url,
                ),
            )  # fmt: skip
            if options.metadata:
                db.cursor().executemany(
                    "INSERT INTO batch_labels (owner, key, value, batch_id)"
                    " VALUES (%s, %s, %s, %s)",
                    [(owner, key, value, batch_id) for key, value in options.metadata.items()],
                )
            if options.idempotency_key is not None:
                db.execute(
                    "UPDATE idempotency_keys SET batch_id = %s WHERE owner = %s AND key = %s",
                    (batch_id, owner, options.idempotency_key),
                )
            if options.openai is not None:
                openai_tables.insert_openai_batch(db, "%s", options.openai)
            counts: list[int] = []
            files: set[str] = set()
            with db.cursor().copy(
                "COPY chunk_requests (batch_id, chunk_no, custom_ids, params, file_id,"
                " file_start, file_end) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["text", "int4", "bytea", "bytea", "text", "int8", "int8"])
                # Each chunk is built just before it is sent, never all at once.
                for number, chunk in enumerate(chunks):
                    counts.append(chunk.count)
                    if chunk.file_id is not None:
                        files.add(chunk.file_id)
                    copy.write_row(
                        (
                            batch_id, number, chunk.custom_ids, chunk.params,
                            chunk.file_id, chunk.file_start, chunk.file_end,
                        )
                    )  # fmt: skip
            for file_id in sorted(files):
                openai_tables.hold_input_file(db, "%s", file_id, " FOR SHARE")
            db.execute(
                "INSERT INTO chunks (batch_id, chunk_no, count, priority)"
                " SELECT %s, number - 1, count, %s FROM unnest(%s::integer[])"
                " WITH ORDINALITY AS c(count, number)",
                (batch_id, options.priority, counts),
            )
            batch = BatchRow.new(batch_id, total, created_at, expires_at, options, retry_of)
            _write_event(db, owner, batch, CREATED, created_at)
        return batch

    def get_batch(self, owner: str, batch_id: str) -> BatchRow | None:
        with self._pool.connection() as db:
            row = db.execute(
                sql.SQL("SELECT {} FROM batches WHERE id = %s AND owner = %s").format(
                    BATCH_COLUMNS
                ),
                (batch_id, owner),
            ).fetchone()
            return _batch_or_none(row)

    def find_batch(self, batch_id: str) -> BatchRow | None:
        with self._pool.connection() as db:
            row = db.execute(
                sql.SQL("SELECT {} FROM batches WHERE id = %s").format(BATCH_COLUMNS),
                (batch_id,),
            ).fetchone()
            return _batch_or_none(row)

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
            "%s",
            BLOB_CONTAINS,
            USAGE_ARRAY,
        )
        with self._pool.connection() as db:
            rows = db.execute(statement, parameters).fetchall()
        page = [batch_row(row) for row in rows[:limit]]
        if newer:
            page.reverse()
        return page, len(rows) > limit

    def cancel_batch(
        self, owner: str | None, batch_id: str, now: float, reason: Mapping[str, Any]
    ) -> BatchRow | None:
        with self._pool.connection() as db:
            with db.transaction():
                row = db.execute(
                    sql.SQL(
                        "UPDATE batches SET status = 'canceling', cancel_initiated_at = %s,"
                        " cancel_reason = %s WHERE id = %s AND owner = coalesce(%s, owner)"
                        " AND status = 'in_progress' RETURNING {}, owner"
                    ).format(BATCH_COLUMNS),
                    (now, as_json(reason), batch_id, owner),
                ).fetchone()
                batch = None if row is None else batch_row(row[:-1])
                if row is not None and batch is not None:
                    _write_event(db, row[-1], batch, CANCELING, now)
            if batch is None:
                # Statuses only move forward, so this reads why the update matched nothing.
                batch = _batch_or_none(
                    db.execute(
                        sql.SQL(
                            "SELECT {} FROM batches WHERE id = %s AND owner = coalesce(%s, owner)"
                        ).format(BATCH_COLUMNS),
                        (batch_id, owner),
                    ).fetchone(),
                )
                if batch is not None and batch.status == "ended":
                    raise WrongState(f"Batch {batch_id} has already ended and cannot be canceled.")
                return batch
            # Outside the cancel's transaction: it must not hold the batch row while it waits for
            # chunk rows (save_part locks the other way round). expedite_overdue finishes the job
            # for any chunk this skips.
            _expedite(db, sql.SQL("batch_id = %s"), (batch_id,))
            return batch

    def delete_batch(self, owner: str, batch_id: str) -> bool:
        with self._pool.connection() as db, db.transaction():
            row = db.execute(
                "SELECT status FROM batches WHERE id = %s AND owner = %s FOR UPDATE",
                (batch_id, owner),
            ).fetchone()
            if row is None:
                return False
            if row[0] != "ended":
                raise WrongState(
                    f"Batch {batch_id} is still {row[0]}; only ended batches can be deleted."
                    " Cancel it first."
                )
            child = db.execute(
                "SELECT child_id FROM retries WHERE parent_id = %s", (batch_id,)
            ).fetchone()
            if child is not None:
                raise WrongState(
                    f"Batch {batch_id} has a retry batch, {child[0]}: delete that first, or"
                    " pass cascade=true to delete the whole retry chain."
                )
            [row] = db.execute(  # locked above
                sql.SQL("SELECT {} FROM batches WHERE id = %s").format(BATCH_COLUMNS),
                (batch_id,),
            ).fetchall()
            batch = batch_row(row)
            _write_event(db, owner, batch, DELETED, time.time())
            db.execute("DELETE FROM retries WHERE child_id = %s", (batch_id,))
            _drop_contents(db, [batch_id])
            db.execute("DELETE FROM batch_labels WHERE batch_id = %s", (batch_id,))
            db.execute("DELETE FROM batch_usage WHERE batch_id = %s", (batch_id,))
            db.execute("DELETE FROM batches WHERE id = %s", (batch_id,))
            return True

    def iter_results(self, batch_id: str) -> Iterator[bytes]:
        # Keyset pages, each on a pooled connection for a moment: a slow download holds no
        # connection and no transaction between pages.
        position = (-1, -1)
        while True:
            with self._pool.connection() as db:
                rows = db.execute(
                    "SELECT chunk_no, part, lines FROM results WHERE batch_id = %s"
                    " AND (chunk_no, part) > (%s, %s) ORDER BY chunk_no, part LIMIT %s",
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
            with self._pool.connection() as db:
                row = db.execute(
                    "SELECT chunk_no, custom_ids, (SELECT coalesce(string_agg(lines,"
                    "   ''::bytea ORDER BY part), ''::bytea) FROM results"
                    "   WHERE results.batch_id = r.batch_id AND results.chunk_no = r.chunk_no),"
                    f" {REQUEST_FIELDS} FROM chunk_requests r WHERE batch_id = %s AND chunk_no > %s"
                    " ORDER BY chunk_no LIMIT 1",
                    (batch_id, chunk_no),
                ).fetchone()
                if row is None:
                    return
                chunk_no, custom_ids, result_lines, *requests = row
                params = _params(db, *requests)
                if not isinstance(params, bytes):
                    params = params_array(params.request_lines())
            yield StoredChunk(custom_ids, params, result_lines)

    def last_part_position(self, batch_id: str) -> int:
        with self._pool.connection() as db:
            row = db.execute(
                "SELECT parts_committed FROM batches WHERE id = %s", (batch_id,)
            ).fetchone()
        return 0 if row is None else int(row[0])

    def iter_parts_after(self, batch_id: str, after: int) -> Iterator[CommittedPart]:
        # Parts from before schema version 3 all have 0: read first, then never again. Past
        # the first page, (chunk_no, part) orders them.
        position = (after, 2**31, 0)
        while True:
            with self._pool.connection() as db:
                rows = db.execute(
                    "SELECT commit_seq, chunk_no, part, lines FROM results WHERE batch_id = %s"
                    " AND (commit_seq, chunk_no, part) > (%s, %s, %s)"
                    " ORDER BY commit_seq, chunk_no, part LIMIT %s",
                    (batch_id, *position, RESULT_PARTS_PER_READ),
                ).fetchall()
            for commit_seq, chunk_no, part, lines in rows:
                position = (commit_seq, chunk_no, part)
                yield CommittedPart(commit_seq, lines)
            if len(rows) < RESULT_PARTS_PER_READ:
                return

    def on_parts_committed(self, callback: Callable[[str], object]) -> None:
        """Once this returns, every part committed on the database reaches `callback`."""
        with self._listener_lock:
            if self._parts_listener is None:
                self._parts_listener = WorkListener(self._database_url, PARTS_CHANNEL)
            self._parts_listener.add(callback)

    def retries_of(self, batch_ids: Sequence[str]) -> list[RetryRow]:
        with self._pool.connection() as db:
            rows = db.execute(
                sql.SQL(
                    "SELECT {} FROM retries WHERE parent_id = ANY(%s) OR child_id = ANY(%s)"
                ).format(RETRY_COLUMNS),
                (list(batch_ids), list(batch_ids)),
            ).fetchall()
        return [_retry(row) for row in rows]

    # --- engine side ----------------------------------------------------------------------

    def lease_chunks(
        self, worker_id: str, limit: int, now: float, lease_seconds: float
    ) -> list[LeasedChunk]:
        with self._pool.connection() as db, db.transaction():
            keys = db.execute(
                "UPDATE chunks SET state = 1, lease_owner = %s, lease_expires = %s"
                " FROM (SELECT c.batch_id, c.chunk_no, q.position FROM chunks c"
                f"       JOIN ({QUEUE_IN_TURNS}) q"
                "          ON q.batch_id = c.batch_id AND q.chunk_no = c.chunk_no"
                # Checked again on the row once locked: another worker may have leased or
                # finished it since this statement's snapshot, and the queue cannot see that.
                "       WHERE c.state = 0 OR (c.state = 1 AND c.lease_expires < %s)"
                "       ORDER BY q.position LIMIT %s"
                "       FOR UPDATE OF c SKIP LOCKED) AS free"
                " WHERE chunks.batch_id = free.batch_id AND chunks.chunk_no = free.chunk_no"
                " RETURNING free.position, chunks.chunk_no, chunks.batch_id",
                (worker_id, now + lease_seconds, now, now, now, limit),
            ).fetchall()
            if not keys:
                return []
            # RETURNING comes in no particular order; callers get the queue's.
            keys.sort()
            # A statement of its own, so its snapshot starts after the locks above were taken:
            # it sees every part a previous holder committed before losing the chunk.
            rows = db.execute(
                "SELECT r.custom_ids, b.status, b.expires_at, d.indices, d.next_part,"
                " b.abort_policy, b.owner,"
                " (SELECT o.endpoint FROM openai_batches o WHERE o.id = b.id),"
                " r.params, r.file_id, r.file_start, r.file_end"
                " FROM unnest(%s::text[], %s::integer[])"
                "   WITH ORDINALITY AS k(batch_id, chunk_no, n)"
                " JOIN chunk_requests r ON r.batch_id = k.batch_id AND r.chunk_no = k.chunk_no"
                " JOIN batches b ON b.id = k.batch_id"
                " CROSS JOIN LATERAL (SELECT array_agg(indices) AS indices,"
                "   coalesce(max(part) + 1, 0) AS next_part FROM results"
                "   WHERE results.batch_id = k.batch_id AND results.chunk_no = k.chunk_no) d"
                " ORDER BY k.n",
                ([key[2] for key in keys], [key[1] for key in keys]),
            ).fetchall()
            rows = [(*row[:8], _params(db, *row[8:])) for row in rows]
        leased = []
        for (_, chunk_no, batch_id), row in zip(keys, rows, strict=True):
            (
                custom_ids, status, expires_at, indices, next_part, abort_policy, owner,
                endpoint, params,
            ) = row  # fmt: skip
            done: set[int] = set()
            for blob in indices or ():
                done.update(orjson.loads(blob))
            leased.append(
                LeasedChunk(
                    batch_id,
                    owner,
                    chunk_no,
                    custom_ids,
                    params,
                    status,
                    expires_at,
                    frozenset(done),
                    next_part,
                    None if abort_policy is None else orjson.loads(abort_policy),
                    endpoint,
                )
            )
        return leased

    # --- the OpenAI Batch API ----------------------------------------------------------------

    def create_file(
        self,
        file: FileRow,
        pieces: Iterable[bytes],
        lines: Callable[[], InputLines | None] = lambda: None,
    ) -> None:
        with self._pool.connection() as db, db.transaction():
            openai_tables.insert_file(db, "%s", file, pieces, lines)

    def add_file_piece(self, file_id: str, number: int, data: bytes) -> None:
        with self._pool.connection() as db, db.transaction():
            # Not flushed on its own: the file's row, committed last, flushes the log up to it.
            db.execute("SET LOCAL synchronous_commit TO off")
            openai_tables.insert_piece(db, "%s", file_id, number, data)

    def commit_file(self, file: FileRow, lines: InputLines | None) -> None:
        with self._pool.connection() as db, db.transaction():
            openai_tables.insert_file_row(db, "%s", file, lines)

    def discard_file_pieces(self, file_id: str) -> None:
        with self._pool.connection() as db, db.transaction():
            openai_tables.drop_unreferenced_bytes(db, "%s", [file_id])

    def delete_abandoned_uploads(self, before_id: str) -> int:
        with self._pool.connection() as db, db.transaction():
            return openai_tables.delete_abandoned_uploads(db, "%s", before_id)

    def input_lines(self, file_id: str) -> InputLines | None:
        with self._pool.connection() as db:
            return openai_tables.input_lines(db, "%s", file_id)

    def get_file(self, owner: str, file_id: str) -> FileRow | None:
        with self._pool.connection() as db:
            return openai_tables.get_file(db, "%s", owner, file_id)

    def list_files(
        self, owner: str, purpose: str | None, after: str | None, limit: int, ascending: bool
    ) -> tuple[list[FileRow], bool]:
        with self._pool.connection() as db:
            return openai_tables.list_files(db, "%s", owner, purpose, after, limit, ascending)

    def iter_file(self, file_id: str) -> Iterator[bytes]:
        def read(file_id: str, after: int) -> list[bytes]:
            with self._pool.connection() as db:
                return openai_tables.file_pieces(db, "%s", file_id, after)

        return openai_tables.iter_pieces(read, file_id)

    def delete_file(self, owner: str, file_id: str) -> bool:
        with self._pool.connection() as db, db.transaction():
            return openai_tables.delete_file(db, "%s", owner, file_id)

    def delete_expired_files(self, now: float) -> int:
        with self._pool.connection() as db, db.transaction():
            return openai_tables.delete_expired_files(db, "%s", now)

    def save_failed_openai_batch(self, batch: OpenAIBatchRow) -> None:
        with self._pool.connection() as db, db.transaction():
            openai_tables.insert_openai_batch(db, "%s", batch)
            _lock_event_numbers(db, batch.owner)
            EVENTS.write_openai_failed(db, batch.owner, batch.id, batch.created_at)
            _notify_events(db, batch.owner)

    def get_openai_batch(self, owner: str, batch_id: str) -> OpenAIBatchRow | None:
        with self._pool.connection() as db:
            return openai_tables.get_openai_batch(db, "%s", owner, batch_id)

    def list_openai_batches(
        self, owner: str, after: str | None, limit: int, before: str | None = None
    ) -> tuple[list[OpenAIBatchRow], bool]:
        with self._pool.connection() as db:
            return openai_tables.list_openai_batches(db, "%s", owner, after, limit, before)

    def results_bytes(self, batch_id: str) -> int:
        with self._pool.connection() as db:
            return openai_tables.results_bytes(db, "%s", batch_id)

    def record_output_files(self, batch: OpenAIBatchRow, files: Sequence[FileRow]) -> None:
        with self._pool.connection() as db, db.transaction():
            openai_tables.record_output_files(db, "%s", batch, files)

    def renew_leases(
        self, worker_id: str, chunks: Sequence[tuple[str, int]], now: float, lease_seconds: float
    ) -> None:
        if not chunks:
            return
        with self._pool.connection() as db:
            db.execute(
                "UPDATE chunks SET lease_expires = %s"
                " FROM unnest(%s::text[], %s::integer[]) AS k(batch_id, chunk_no)"
                " WHERE chunks.batch_id = k.batch_id AND chunks.chunk_no = k.chunk_no"
                " AND state = 1 AND lease_owner = %s",
                (
                    now + lease_seconds,
                    [batch_id for batch_id, _ in chunks],
                    [chunk_no for _, chunk_no in chunks],
                    worker_id,
                ),
            )

    def register_engine(self, worker_id: str) -> None:
        self._work_listener().hold_lock(worker_id)

    def recover_abandoned_chunks(self) -> int:
        listener = self._listener
        if listener is None or not listener.settled():
            return 0
        with self._pool.connection() as db:
            # The lease of a delivery is taken after its engine's lock, as a chunk's is.
            db.execute(RECOVER_ABANDONED_DELIVERIES)
            owners = abandoned_lease_owners(db)
            if not owners:
                return 0
            # Skips the rows a concurrent recovery holds: that one frees them.
            recovered = db.execute(
                "UPDATE chunks SET state = 0, lease_owner = NULL, lease_expires = NULL"
                " FROM (SELECT batch_id, chunk_no FROM chunks"
                "       WHERE state = 1 AND lease_owner = ANY(%s) FOR UPDATE SKIP LOCKED) AS gone"
                " WHERE chunks.batch_id = gone.batch_id AND chunks.chunk_no = gone.chunk_no",
                (owners,),
            ).rowcount
        if recovered:
            log.warning(
                "%d chunks back in the queue: their engines are gone (%s)",
                recovered,
                ", ".join(owners),
            )
        return recovered

    def release_leases(self, worker_id: str, only: tuple[str, int] | None = None) -> int:
        query = (
            "UPDATE chunks SET state = 0, lease_owner = NULL, lease_expires = NULL"
            " WHERE state = 1 AND lease_owner = %s"
        )
        if only is not None:
            query += " AND batch_id = %s AND chunk_no = %s"
        with self._pool.connection() as db:
            return db.execute(query, (worker_id, *(only or ()))).rowcount

    def announce_work(self) -> None:
        with self._pool.connection() as db:
            db.execute(sql.SQL("NOTIFY {}").format(sql.Identifier(WORK_CHANNEL)))

    def on_work_announced(self, callback: Callable[[], object]) -> None:
        """Once this returns, every announce_work on the database reaches `callback`."""
        self._work_listener().add(lambda _payload: callback())

    def _work_listener(self) -> WorkListener:
        with self._listener_lock:
            if self._listener is None:
                self._listener = WorkListener(self._database_url)
            return self._listener

    def save_part(self, worker_id: str, part: ResultPart, now: float) -> bool:
        counts = part.counts
        status = None
        indices = orjson.dumps(list(part.indices))
        with self._pool.connection() as db, db.transaction():
            chunk = db.execute(
                "SELECT state, lease_owner FROM chunks WHERE batch_id = %s AND chunk_no = %s"
                " FOR UPDATE",
                (part.batch_id, part.chunk_no),
            ).fetchone()
            if chunk != (1, worker_id):
                saved = db.execute(
                    "SELECT indices FROM results WHERE batch_id = %s AND chunk_no = %s"
                    " AND part = %s",
                    (part.batch_id, part.chunk_no, part.part),
                ).fetchone()
                return committed_before(
                    part,
                    indices,
                    None if saved is None else saved[0],
                    None if chunk is None else chunk[0],
                )
            if part.chunk_done:
                db.execute(
                    "UPDATE chunks SET state = 2, lease_owner = NULL, lease_expires = NULL"
                    " WHERE batch_id = %s AND chunk_no = %s",
                    (part.batch_id, part.chunk_no),
                )
            if part.indices:
                # The part's number is taken under the batch row's lock, held to the commit: the
                # parts of a batch become visible in the order of their numbers.
                inserted = db.execute(
                    "INSERT INTO results (batch_id, chunk_no, part, indices, lines, commit_seq)"
                    " VALUES (%s, %s, %s, %s, %s, (SELECT parts_committed + 1 FROM batches"
                    "   WHERE id = %s FOR UPDATE))"
                    " ON CONFLICT DO NOTHING RETURNING part",
                    (part.batch_id, part.chunk_no, part.part, indices, part.lines, part.batch_id),
                ).fetchone()
                if inserted is None:
                    # The number is taken. If by this very part, it was committed in a try whose
                    # answer was lost (counted then); if by another, the chunk ran elsewhere
                    # meanwhile and came back to this worker, whose parts are stale.
                    saved = db.execute(
                        "SELECT indices FROM results WHERE batch_id = %s AND chunk_no = %s"
                        " AND part = %s",
                        (part.batch_id, part.chunk_no, part.part),
                    ).fetchone()
                    return saved is not None and bytes(saved[0]) == indices
                if part.usage:
                    db.cursor().executemany(
                        USAGE_UPSERT,
                        [
                            (part.batch_id, model, *dataclasses.astuple(usage))
                            for model, usage in part.usage
                        ],
                    )
                # Followers hear of the part once it commits (NOTIFY is sent at commit).
                [(status, _)] = db.execute(
                    "UPDATE batches SET processing = processing - %(total)s,"
                    " parts_committed = parts_committed + 1,"
                    " succeeded = succeeded + %(succeeded)s, errored = errored + %(errored)s,"
                    " canceled = canceled + %(canceled)s, expired = expired + %(expired)s,"
                    " status = CASE WHEN processing = %(total)s THEN 'ended' ELSE status END,"
                    " ended_at = CASE WHEN processing = %(total)s THEN %(now)s ELSE ended_at END"
                    " WHERE id = %(batch_id)s"
                    " RETURNING status, pg_notify('" + PARTS_CHANNEL + "', id) IS NULL",
                    {
                        "total": counts.total,
                        "succeeded": counts.succeeded,
                        "errored": counts.errored,
                        "canceled": counts.canceled,
                        "expired": counts.expired,
                        "now": now,
                        "batch_id": part.batch_id,
                    },
                ).fetchall()
                if status == "ended" or EVENTS.progress_due(db, part.batch_id, now):
                    [row] = db.execute(
                        sql.SQL("SELECT {}, owner FROM batches WHERE id = %s").format(
                            BATCH_COLUMNS
                        ),
                        (part.batch_id,),
                    ).fetchall()
                    batch = batch_row(row[:-1])
                    _write_event(db, row[-1], batch, ENDED if status == "ended" else PROGRESS, now)
        if status == "ended":
            log.info("batch ended", extra={"batch_id": part.batch_id})
        return True

    def count_batches_by_status(self) -> dict[str, int]:
        # One row per batch (not per request): no index of its own, to need no migration.
        with self._pool.connection() as db:
            rows = db.execute("SELECT status, count(*) FROM batches GROUP BY status").fetchall()
            return {status: count for status, count in rows}

    def canceling_batch_ids(self) -> set[str]:
        with self._pool.connection() as db:
            return {
                row[0] for row in db.execute("SELECT id FROM batches WHERE status = 'canceling'")
            }

    def expedite_overdue(self, now: float) -> int:
        with self._pool.connection() as db:
            return _expedite(
                db,
                sql.SQL(
                    "batch_id IN (SELECT id FROM batches WHERE status <> 'ended'"
                    " AND (status = 'canceling' OR expires_at <= %s))"
                ),
                (now,),
            )

    def archive_older_than(self, created_before: float, now: float) -> int:
        with self._pool.connection() as db, db.transaction():
            rows = db.execute(
                sql.SQL(
                    "UPDATE batches SET archived_at = %s WHERE id IN (SELECT id FROM batches"
                    " WHERE status = 'ended' AND archived_at IS NULL AND created_at < %s"
                    " ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING {}, owner"
                ).format(BATCH_COLUMNS),
                (now, created_before, ARCHIVE_BATCHES_PER_CALL),
            ).fetchall()
            archived = [row[0] for row in rows]
            _drop_contents(db, archived)
            openai_tables.delete_output_files(db, "%s", archived)
            # By workspace: each event takes its workspace's lock, always in the same order.
            for row in sorted(rows, key=lambda row: (row[-1], row[0])):
                batch = batch_row(row[:-1])
                _write_event(db, row[-1], batch, ARCHIVED, now)
            return len(rows)

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
        with self._pool.connection() as db, db.transaction():
            db.execute(
                "DELETE FROM idempotency_keys WHERE owner = %s AND key = %s"
                " AND (created_at < %s OR (batch_id IS NULL AND created_at < %s))",
                (owner, key, expired_before, abandoned_before),
            )
            held = db.execute(
                "INSERT INTO idempotency_keys (owner, key, digest, created_at)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING key",
                (owner, key, digest, now),
            ).fetchone()
            if held is not None:
                return None
            record = db.execute(
                "SELECT digest, batch_id FROM idempotency_keys WHERE owner = %s AND key = %s",
                (owner, key),
            ).fetchone()
        if record is None:
            # Released between the insert and the read: the next try claims it.
            return IdempotencyRecord(digest, None)
        return IdempotencyRecord(*record)

    def release_idempotency_key(self, owner: str, key: str, digest: str) -> None:
        with self._pool.connection() as db:
            db.execute(
                "DELETE FROM idempotency_keys WHERE owner = %s AND key = %s AND digest = %s"
                " AND batch_id IS NULL",
                (owner, key, digest),
            )

    def forget_idempotency_keys(self, created_before: float) -> int:
        with self._pool.connection() as db:
            return db.execute(
                "DELETE FROM idempotency_keys WHERE created_at < %s", (created_before,)
            ).rowcount

    # --- usage -------------------------------------------------------------------------------

    def usage_report(
        self, owner: str, starting_at: float, ending_at: float
    ) -> tuple[list[UsageReportRow], list[OutcomeReportRow]]:
        scope = (owner, starting_at, ending_at)
        tokens_query, outcomes_query = USAGE_REPORT
        with self._pool.connection() as db:
            tokens = [
                UsageReportRow(day, model, TokenUsage(*map(int, usage)))
                for day, model, *usage in db.execute(tokens_query, scope).fetchall()
            ]
            outcomes = [
                OutcomeReportRow(day, ResultCounts(*map(int, counts)))
                for day, *counts in db.execute(outcomes_query, scope).fetchall()
            ]
        return tokens, outcomes

    # --- events and webhooks ------------------------------------------------------------------

    def last_event_number(self, owner: str) -> int:
        with self._pool.connection() as db:
            return EVENTS.last_number(db, owner)

    def forget_events(self, progress_before: float, before: float) -> int:
        with self._pool.connection() as db, db.transaction():
            return EVENTS.forget(db, progress_before, before, FORGOTTEN_PER_CALL)

    def on_events_written(self, callback: Callable[[str], object]) -> None:
        """Once this returns, every event committed on the database reaches `callback`."""
        with self._listener_lock:
            if self._events_listener is None:
                self._events_listener = WorkListener(self._database_url, EVENTS_CHANNEL)
            self._events_listener.add(callback)

    def events_after(
        self, owner: str, after: int, batch_id: str | None, limit: int
    ) -> list[BatchEvent]:
        with self._pool.connection() as db:
            return EVENTS.events_after(db, owner, after, batch_id, limit)

    def create_webhook(self, webhook: WebhookRow) -> None:
        with self._pool.connection() as db:
            EVENTS.create_webhook(db, webhook)

    def webhooks(self, owner: str) -> list[WebhookRow]:
        with self._pool.connection() as db:
            return EVENTS.webhooks(db, owner)

    def delete_webhook(self, owner: str, webhook_id: str) -> bool:
        with self._pool.connection() as db, db.transaction():
            return EVENTS.delete_webhook(db, owner, webhook_id)

    def rotate_webhook_secret(
        self, owner: str, webhook_id: str, secret: str, previous_until: float
    ) -> WebhookRow | None:
        with self._pool.connection() as db:
            return EVENTS.rotate_secret(db, owner, webhook_id, secret, previous_until)

    def workspace_webhook_secret(self, owner: str, candidate: str) -> str:
        with self._pool.connection() as db:
            return EVENTS.workspace_secret(db, owner, candidate)

    def deliveries(
        self, owner: str, webhook_id: str, limit: int, before_id: int | None
    ) -> list[DeliveryRow]:
        with self._pool.connection() as db:
            return EVENTS.deliveries(db, owner, webhook_id, limit, before_id)

    def batch_deliveries(self, owner: str, batch_id: str, limit: int) -> list[DeliveryRow]:
        with self._pool.connection() as db:
            return EVENTS.batch_deliveries(db, owner, batch_id, limit)

    def redeliver(self, owner: str, webhook_id: str, delivery_id: int, now: float) -> bool:
        with self._pool.connection() as db, db.transaction():
            redelivered = EVENTS.redeliver(db, owner, webhook_id, delivery_id, now)
            if redelivered:
                _notify_events(db, owner)
            return redelivered

    def lease_deliveries(
        self, worker_id: str, limit: int, now: float, lease_seconds: float
    ) -> list[LeasedDelivery]:
        with self._pool.connection() as db, db.transaction():
            return EVENTS.lease(db, worker_id, limit, now, lease_seconds)

    def finish_attempt(self, worker_id: str, delivery_id: int, outcome: DeliveryOutcome) -> bool:
        with self._pool.connection() as db, db.transaction():
            return EVENTS.finish(db, worker_id, delivery_id, outcome)

    # --- API keys ------------------------------------------------------------------------------

    def create_api_key(self, key: ApiKeyRow) -> None:
        with self._pool.connection() as db:
            db.execute(
                sql.SQL("INSERT INTO api_keys ({}) VALUES (%s, %s, %s, %s, %s, %s, %s)").format(
                    API_KEY_COLUMNS
                ),
                dataclasses.astuple(key),
            )

    def api_keys(self) -> list[ApiKeyRow]:
        with self._pool.connection() as db:
            rows = db.execute(
                sql.SQL("SELECT {} FROM api_keys ORDER BY created_at, id").format(API_KEY_COLUMNS)
            ).fetchall()
        return [ApiKeyRow(*row) for row in rows]

    def revoke_api_key(self, key_id: str, now: float) -> ApiKeyRow | None:
        with self._pool.connection() as db:
            row = db.execute(
                sql.SQL(
                    "UPDATE api_keys SET revoked_at = coalesce(revoked_at, %s) WHERE id = %s"
                    " RETURNING {}"
                ).format(API_KEY_COLUMNS),
                (now, key_id),
            ).fetchone()
        return None if row is None else ApiKeyRow(*row)

    def close(self) -> None:
        with self._listener_lock:
            for listener in (self._listener, self._parts_listener, self._events_listener):
                if listener is not None:
                    listener.close()
        self._pool.close()

    def schema_problem(self) -> str | None:
        with self._pool.connection(timeout=PING_TIMEOUT_SECONDS) as db:
            status = SchemaStatus(applied_versions(db), self._schema_versions)
            problem = schema_problem(status, describe(self._database_url))
            if problem is not None:
                return problem
            missing = [
                row[0]
                for row in db.execute(
                    "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regclass(name) IS NULL",
                    (list(TABLES),),
                )
            ]
        if missing:
            return f"The batchgate schema in {describe(self._database_url)} lacks tables {missing}."
        return None


def _retry(row: tuple[object, ...]) -> RetryRow:
    child_id, parent_id, created_at, *counts = row
    return RetryRow(child_id, parent_id, created_at, ResultCounts(*counts))  # type: ignore[arg-type]


def _insert_retry(db: psycopg.Connection[TupleRow], retry: RetryRow) -> None:
    counts = retry.retried
    inserted = db.execute(
        sql.SQL("INSERT INTO retries ({}) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (parent_id) DO NOTHING RETURNING child_id").format(RETRY_COLUMNS),
        (
            retry.child_id, retry.parent_id, retry.created_at,
            counts.succeeded, counts.errored, counts.canceled, counts.expired,
        ),
    ).fetchone()  # fmt: skip
    if inserted is None:
        raise WrongState(
            f"Batch {retry.parent_id} has been retried already: retry its retry batch instead."
        )


def _notify_events(db: psycopg.Connection[TupleRow], owner: str) -> None:
    db.execute("SELECT pg_notify(%s, %s)", (EVENTS_CHANNEL, owner))


def _write_event(
    db: psycopg.Connection[TupleRow], owner: str, batch: BatchRow, event_type: str, now: float
) -> None:
    """Writes the event in the caller's transaction, if the batch has one."""
    if not has_event(batch.id, event_type):
        return
    _lock_event_numbers(db, owner)
    EVENTS.write(db, owner, batch, event_type, now)
    _notify_events(db, owner)


def _lock_event_numbers(db: psycopg.Connection[TupleRow], owner: str) -> None:
    """An event's number is drawn under a lock of its workspace held to the commit, so that a
    workspace's events commit in the order of their numbers: a stream that has seen number n
    misses nothing by asking for those after it."""
    db.execute("SELECT pg_advisory_xact_lock(hashtext('batchgate_events'), hashtext(%s))", (owner,))


def _expedite(
    db: psycopg.Connection[TupleRow], which: sql.Composable, params: tuple[object, ...]
) -> int:
    """Moves the unfinished chunks of the batches `which` selects to the front of the queue."""
    return db.execute(
        sql.SQL(
            "UPDATE chunks SET urgent = true FROM (SELECT batch_id, chunk_no FROM chunks"
            " WHERE state < 2 AND NOT urgent AND {} FOR UPDATE SKIP LOCKED) AS due"
            " WHERE chunks.batch_id = due.batch_id AND chunks.chunk_no = due.chunk_no"
        ).format(which),
        params,
    ).rowcount


def _drop_contents(db: psycopg.Connection[TupleRow], batch_ids: list[str]) -> None:
    """Deletes the batches' requests and results, and the bytes of the input files only their
    requests referred to. Labels and usage stay with an archived batch's row."""
    if batch_ids:
        db.execute("DELETE FROM results WHERE batch_id = ANY(%s)", (batch_ids,))
        files = db.execute(
            "DELETE FROM chunk_requests WHERE batch_id = ANY(%s) RETURNING file_id", (batch_ids,)
        ).fetchall()
        db.execute("DELETE FROM chunks WHERE batch_id = ANY(%s)", (batch_ids,))
        openai_tables.drop_unreferenced_bytes(db, "%s", (file_id for (file_id,) in files))


def _params(
    db: psycopg.Connection[TupleRow], params: bytes, file_id: str | None, start: int, end: int
) -> bytes | InputSpan:
    """A chunk's params: stored, or read from the input file its chunk refers to."""
    if file_id is None:
        return params
    read = openai_tables.substr_reader(db, "%s")
    return openai_tables.span_in_file(db, "%s", file_id, start, end, read)
