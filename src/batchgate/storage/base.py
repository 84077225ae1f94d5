"""The storage interface shared by every database batchgate runs on.

Requests are stored in *chunks*: a run of up to `chunk_size` consecutive requests of one batch, kept
as two JSON arrays (custom_ids and params). An OpenAI batch made from a clean input file
(storage/openai_tables.py) keeps no params: each chunk names the byte range of its requests' lines
in the file's stored pieces, whose bodies are the params, read from there whenever the chunk is read
(leased, as the lines themselves, each body decoded as the engine runs it; retried, shown, as the
params array); the create reads and copies nothing. Workers lease whole chunks, and write
their results back as *parts*: blobs of finished JSONL result lines plus the indices they cover,
each part committed together with the batch's counters. A chunk whose worker died is leased again
and only the indices not yet in a part are run, so each request ends exactly once.
"""

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from batchgate.lifecycle.openai_input import InputSpan
from batchgate.storage.migrations import SchemaStatus
from batchgate.storage.openai_tables import FileRow, InputLines, OpenAIBatchRow


class WrongState(Exception):
    """The batch exists but is in a state that does not allow the operation."""


class StoreUnavailable(Exception):
    """The database cannot be reached or written just now (a server condition, not a bug).

    Stores raise it for their driver's connection and I/O errors, never for a violated
    constraint. Nothing of the failed call is committed, except that a commit whose answer was
    lost may have gone through: the calls that write are safe to retry (see save_part).
    """


class StoreFull(StoreUnavailable):
    """The database's disk is full: nothing more can be written until space is freed."""


# chunks.state, in both stores.
CHUNK_DONE = 2


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Tokens of succeeded requests, and how many requests they are."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def __add__(self, other: "TokenUsage") -> "TokenUsage":
        return TokenUsage(
            self.requests + other.requests,
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_creation_input_tokens + other.cache_creation_input_tokens,
            self.cache_read_input_tokens + other.cache_read_input_tokens,
        )

    def token_counts(self) -> dict[str, int]:
        """The token counts as Anthropic's Message.usage names them."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
        }


# Token usage per model: (model, usage) pairs.
UsageByModel = tuple[tuple[str, TokenUsage], ...]


@dataclass(frozen=True, slots=True)
class BatchOptions:
    """What a create may add to a batch beyond its requests (docs/api.md, "Beyond the
    original"); JSON-ready values, checked by the API."""

    metadata: Mapping[str, str] | None = None
    priority: int = 0
    abort_policy: Mapping[str, Any] | None = None
    # The create's Idempotency-Key, claimed before (claim_idempotency_key): the batch is recorded
    # as that key's in the create's own transaction.
    idempotency_key: str | None = None
    # Where the batch's own events are delivered (a URL checked by the API), besides the
    # workspace's webhooks.
    webhook_url: str | None = None
    # An OpenAI batch (api/openai_batches.py): its row, stored with the batch.
    openai: OpenAIBatchRow | None = None


NO_OPTIONS = BatchOptions()


@dataclass(frozen=True, slots=True)
class BatchFilter:
    """Which of an owner's batches a list shows: every label must match, the status, and one
    of its requests has the custom_id."""

    labels: tuple[tuple[str, str], ...] = ()
    status: str | None = None
    custom_id: str | None = None


EVERY_BATCH = BatchFilter()


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """A key already claimed: the digest of its body, and its batch (None while being stored)."""

    digest: str
    batch_id: str | None


@dataclass(frozen=True, slots=True)
class UsageReportRow:
    """The tokens of an owner's batches created on one UTC day (days since the epoch), by model."""

    day: int
    model: str
    usage: TokenUsage


@dataclass(frozen=True, slots=True)
class OutcomeReportRow:
    """The request counts of an owner's batches created on one UTC day."""

    day: int
    counts: "ResultCounts"


@dataclass(frozen=True, slots=True)
class BatchRow:
    id: str
    status: str
    total: int
    processing: int
    succeeded: int
    errored: int
    canceled: int
    expired: int
    created_at: float
    expires_at: float
    ended_at: float | None
    cancel_initiated_at: float | None
    archived_at: float | None
    metadata: Mapping[str, str] | None = None
    priority: int = 0
    abort_policy: Mapping[str, Any] | None = None
    # Why it was canceled: {"type": "user"} or {"type": "abort_policy", "message": ...}.
    cancel_reason: Mapping[str, Any] | None = None
    # Where the batch's own events are delivered besides the workspace's webhooks.
    webhook_url: str | None = None
    usage: UsageByModel = ()
    # Its place in a retry chain (POST .../retry): the batch it retries, the batch retrying it.
    retry_of: str | None = None
    retried_as: str | None = None

    @classmethod
    def new(
        cls,
        batch_id: str,
        total: int,
        created_at: float,
        expires_at: float,
        options: BatchOptions = NO_OPTIONS,
        retry_of: "RetryRow | None" = None,
    ) -> "BatchRow":
        """A batch as it is the moment it is created: every request still processing; with
        `retry_of`, the retry it is the child of."""
        return cls(
            batch_id, "in_progress", total, total, 0, 0, 0, 0,
            created_at, expires_at, None, None, None,
            options.metadata or None, options.priority, options.abort_policy,
            None, options.webhook_url, (), None if retry_of is None else retry_of.parent_id,
        )  # fmt: skip

    @property
    def total_usage(self) -> TokenUsage:
        return sum((usage for _, usage in self.usage), TokenUsage())

    @property
    def request_counts(self) -> dict[str, int]:
        """The counts as Anthropic's batch object shows them."""
        return {
            "processing": self.processing,
            "succeeded": self.succeeded,
            "errored": self.errored,
            "canceled": self.canceled,
            "expired": self.expired,
        }


@dataclass(frozen=True, slots=True)
class NewChunk:
    count: int
    custom_ids: bytes  # JSON array of strings
    params: bytes  # JSON array of objects, same order
    # A chunk that refers to its requests' lines in an input file (bytes `file_start` to
    # `file_end`) instead of holding their params (then b""): see the module's docstring.
    file_id: str | None = None
    file_start: int = 0
    file_end: int = 0


@dataclass(frozen=True, slots=True)
class LeasedChunk:
    batch_id: str
    # The owner of the batch: the engine serves waiting requests in turns across workspaces.
    workspace: str
    chunk_no: int
    custom_ids: bytes
    # The JSON array of the requests' params; or, for a chunk read from its input file's lines,
    # the span of the file that holds them.
    params: bytes | InputSpan
    batch_status: str
    expires_at: float
    done_indices: frozenset[int]
    next_part: int
    abort_policy: Mapping[str, Any] | None = None
    # The endpoint of an OpenAI batch's requests ("/v1/chat/completions"); None for Messages.
    endpoint: str | None = None


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A chunk's requests as created, and the result lines committed for it so far."""

    custom_ids: bytes
    params: bytes
    result_lines: bytes


@dataclass(slots=True)
class ResultCounts:
    succeeded: int = 0
    errored: int = 0
    canceled: int = 0
    expired: int = 0

    @property
    def total(self) -> int:
        return self.succeeded + self.errored + self.canceled + self.expired


@dataclass(frozen=True, slots=True)
class ResultPart:
    batch_id: str
    chunk_no: int
    part: int
    indices: Sequence[int]
    lines: bytes  # JSONL, each line ending in \n
    counts: ResultCounts = field(default_factory=ResultCounts)
    chunk_done: bool = False
    # Tokens of its succeeded requests, added to the batch's with the part.
    usage: UsageByModel = ()


def committed_before(
    part: ResultPart, indices: bytes, saved_indices: bytes | None, chunk_state: int | None
) -> bool:
    """Whether a part its worker may not write now (its number is taken, or the chunk is not
    leased to it) is one that worker committed already, in a try whose answer was lost.

    `saved_indices` are those of the part stored under its number, `chunk_state` the chunk's.
    """
    if saved_indices is not None:
        # The number is the worker's own only while it holds the lease: a part stored under it
        # with other indices was written by the chunk's next holder.
        return bytes(saved_indices) == indices
    # A closing part without results writes no row; once committed, the chunk is done.
    return not part.indices and part.chunk_done and chunk_state == CHUNK_DONE


@dataclass(frozen=True, slots=True)
class CommittedPart:
    """A part as followers read it: its place in its batch's commit order, and its lines.

    Positions only grow within a batch, in the order its parts became visible: a reader that
    has seen every part up to a position misses nothing by asking for those after it."""

    position: int
    lines: bytes


@dataclass(frozen=True, slots=True)
class RetryRow:
    """A retry: `child_id` holds the requests of `parent_id` whose results `retried` counts."""

    child_id: str
    parent_id: str
    created_at: float
    retried: ResultCounts


# --- API keys ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiKeyRow:
    """A key kept in the database: never the key itself, only its SHA-256 and its prefix.

    The prefix is the key's first characters: public (it is shown by `batchgate keys list`) and
    unique, so a presented key is found by it before its hash is compared (api/auth.py).
    """

    id: str
    workspace: str
    prefix: str
    key_hash: str
    created_at: float
    revoked_at: float | None
    # Sees its workspace's batches but may change nothing (api/access.py).
    read_only: bool = False


# --- events and webhooks ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchEvent:
    """An event as stored (lifecycle/events.py). `number` orders a workspace's events in commit
    order (the SSE id); `seq` numbers the batch's own from 1."""

    number: int
    batch_id: str
    seq: int
    type: str
    created_at: float
    data: bytes  # JSON object


@dataclass(frozen=True, slots=True)
class WebhookRow:
    id: str
    owner: str
    url: str
    event_types: tuple[str, ...]
    secret: str
    previous_secret: str | None
    previous_secret_until: float | None
    created_at: float
    disabled_at: float | None = None
    disabled_reason: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One event to one endpoint, and its attempts so far (JSON objects, the latest last)."""

    id: int
    owner: str
    webhook_id: str | None
    url: str
    event_number: int
    state: str  # pending, delivered or failed
    attempts: int
    next_attempt_at: float | None
    attempt_log: tuple[dict[str, Any], ...]
    created_at: float
    delivered_at: float | None


@dataclass(frozen=True, slots=True)
class LeasedDelivery:
    """A delivery leased to an engine: its event, and the secrets that sign it."""

    delivery: DeliveryRow
    event: BatchEvent
    secrets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What an attempt came to: the attempt as logged, the delivery's state after it, when to try
    again (pending), and why the endpoint is disabled now (a 410), if it is."""

    attempt: Mapping[str, Any]
    state: str
    next_attempt_at: float | None = None
    disable_webhook: str | None = None


class Store(Protocol):
    """Synchronous storage calls; the async layers run them in worker threads, or, where
    `point_reads_inline`, a read of one batch by its id on the event loop's own thread."""

    # Whether such a read is brief enough for the event loop's thread: a local file's cached
    # pages, whose readers (in WAL mode) wait for no writer, not a round trip to a server. It
    # spares the hand-offs to a worker thread and back, each a wait for the GIL and a core while
    # thousands of requests end at once.
    point_reads_inline: bool

    def ping(self) -> None:
        """A round trip to the database; raises when it cannot be reached."""
        ...

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
        """Stores the batch and its chunks in one transaction, consuming `chunks` lazily; with
        `retry_of`, the retry that makes it a child (whose child_id is `batch_id`) as well.
        Raises WrongState if that parent has a child already, and FileGone if a file its chunks
        refer to is no longer there."""
        ...

    def get_batch(self, owner: str, batch_id: str) -> BatchRow | None: ...

    def find_batch(self, batch_id: str) -> BatchRow | None:
        """A batch whoever owns it, for the engine."""
        ...

    def list_batches(
        self,
        owner: str,
        limit: int,
        after_id: str | None,
        before_id: str | None,
        only: BatchFilter = EVERY_BATCH,
    ) -> tuple[list[BatchRow], bool]:
        """A page, newest first, and whether more exist beyond it in the walking direction."""
        ...

    def cancel_batch(
        self, owner: str | None, batch_id: str, now: float, reason: Mapping[str, Any]
    ) -> BatchRow | None:
        """Starts canceling an in-progress batch, for `reason` (kept on the batch). Raises
        WrongState once it has ended. `owner` None: the engine's cancel (an abort policy)."""
        ...

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
        """Claims the key for a create of the body with `digest`: None once claimed, else the
        record of the create that holds it. A claim made before `expired_before` is taken over
        (the key expired), as is one without a batch made before `abandoned_before` (the
        process storing its create died)."""
        ...

    def release_idempotency_key(self, owner: str, key: str, digest: str) -> None:
        """Gives up a claim whose create failed, so that a retry can create the batch."""
        ...

    def forget_idempotency_keys(self, created_before: float) -> int:
        """Deletes the keys claimed before the cutoff; returns how many."""
        ...

    # --- usage -------------------------------------------------------------------------------
    def usage_report(
        self, owner: str, starting_at: float, ending_at: float
    ) -> tuple[list[UsageReportRow], list[OutcomeReportRow]]:
        """Tokens by day and model, and requests by day and outcome, of the owner's batches
        created from `starting_at` until before `ending_at`."""
        ...

    def delete_batch(self, owner: str, batch_id: str) -> bool:
        """Deletes an ended batch, and the retry that made it a child. Raises WrongState before
        it has ended, or while it has a child."""
        ...

    def iter_results(self, batch_id: str) -> Iterator[bytes]:
        """The batch's JSONL result blobs, read a few parts at a time."""
        ...

    def iter_request_chunks(self, batch_id: str) -> Iterator[StoredChunk]:
        """The batch's requests chunk by chunk, each with its results so far."""
        ...

    def last_part_position(self, batch_id: str) -> int:
        """The position of the batch's last committed part (CommittedPart); 0 before any."""
        ...

    def iter_parts_after(self, batch_id: str, after: int) -> Iterator[CommittedPart]:
        """The batch's parts committed after position `after`, in commit order, read a few at a
        time, until none is left."""
        ...

    def on_parts_committed(self, callback: Callable[[str], object]) -> None:
        """Registers a follower's wake-up, called from any thread with the id of a batch that
        committed parts, or with "" when some may have gone unheard (a lost connection)."""
        ...

    def retries_of(self, batch_ids: Sequence[str]) -> list[RetryRow]:
        """The retries whose parent or child is one of `batch_ids`."""
        ...

    # --- the OpenAI Batch API (storage/openai_tables.py) -------------------------------------
    def create_file(
        self,
        file: FileRow,
        pieces: Iterable[bytes],
        lines: Callable[[], InputLines | None] = lambda: None,
    ) -> None:
        """Stores a file and its bytes, in pieces read lazily, in one transaction; and what
        `lines`, asked once every piece is read, found of its lines, if anything."""
        ...

    def add_file_piece(self, file_id: str, number: int, data: bytes) -> None:
        """Stores piece `number` of an upload in a commit of its own, not yet synced: nothing
        sees it until `commit_file` stores the file's row."""
        ...

    def commit_file(self, file: FileRow, lines: InputLines | None) -> None:
        """Makes an upload whose pieces are all stored a file, synced with its pieces; with what
        its upload found of its lines, if anything."""
        ...

    def discard_file_pieces(self, file_id: str) -> None:
        """Deletes the pieces of an upload that failed before `commit_file`."""
        ...

    def delete_abandoned_uploads(self, before_id: str) -> int:
        """Deletes the pieces of uploads that never got their file's row, up to 100 of them, of
        those whose ids sort before `before_id`; returns how many."""
        ...

    def input_lines(self, file_id: str) -> InputLines | None:
        """What the upload of a batch input file found of its lines, if it was clean."""
        ...

    def get_file(self, owner: str, file_id: str) -> FileRow | None: ...

    def list_files(
        self, owner: str, purpose: str | None, after: str | None, limit: int, ascending: bool
    ) -> tuple[list[FileRow], bool]:
        """A page of the owner's files by id (creation time), and whether more follow."""
        ...

    def iter_file(self, file_id: str) -> Iterator[bytes]:
        """An uploaded file's bytes, read a few pieces at a time."""
        ...

    def delete_file(self, owner: str, file_id: str) -> bool: ...

    def delete_expired_files(self, now: float) -> int:
        """Housekeeping: deletes files whose expires_at has passed, with their bytes, a bounded
        number a call; returns how many."""
        ...

    def save_failed_openai_batch(self, batch: OpenAIBatchRow) -> None:
        """Stores an OpenAI batch whose input file failed validation: it has no requests."""
        ...

    def get_openai_batch(self, owner: str, batch_id: str) -> OpenAIBatchRow | None: ...

    def list_openai_batches(
        self, owner: str, after: str | None, limit: int, before: str | None = None
    ) -> tuple[list[OpenAIBatchRow], bool]:
        """A page of the owner's OpenAI batches, newest first, and whether more follow: older
        than `after`, or else the page just newer than `before` (whether newer ones follow)."""
        ...

    def results_bytes(self, batch_id: str) -> int:
        """The size of all the batch's result lines, without reading them."""
        ...

    def record_output_files(self, batch: OpenAIBatchRow, files: Sequence[FileRow]) -> None:
        """Stores an ended OpenAI batch's output and error files, once."""
        ...

    # --- engine side ----------------------------------------------------------------------
    def lease_chunks(
        self, worker_id: str, limit: int, now: float, lease_seconds: float
    ) -> list[LeasedChunk]: ...

    def renew_leases(
        self, worker_id: str, chunks: Sequence[tuple[str, int]], now: float, lease_seconds: float
    ) -> None:
        """Extends the worker's leases of the (batch_id, chunk_no) it names and still holds.

        Only the chunks it runs: one leased to it by a call whose answer was lost (the database
        went away meanwhile) is never renewed, so its lease lapses and the chunk runs after all.
        """
        ...

    def register_engine(self, worker_id: str) -> None:
        """Called as an engine starts, before its first lease: from then on until the store
        closes, or its process dies, the other engines on the database know it is alive."""
        ...

    def recover_abandoned_chunks(self) -> int:
        """Puts the chunks leased to engines that are gone back in the queue; returns how many.

        Engines call it before their first lease and then several times a second. SQLite
        serves one process, whose engines are alive: only leases from before the store opened
        are abandoned, and the first call frees them. On a shared database an engine is gone
        once its lock (register_engine) is; the leases of one alive but hung still lapse.
        """
        ...

    def release_leases(self, worker_id: str, only: tuple[str, int] | None = None) -> int:
        """Puts the worker's leased chunks back in the queue at once: all of them as it shuts
        down, or `only` the (batch_id, chunk_no) whose run failed.

        Their finished requests stay done: they are in the parts already committed.
        Returns how many chunks were released.
        """
        ...

    def announce_work(self) -> None:
        """Tells every engine on this database that there is new work (a create or a cancel)."""
        ...

    def on_work_announced(self, callback: Callable[[], object]) -> None:
        """Registers an engine's wake-up; it may be called from any thread."""
        ...

    def save_part(self, worker_id: str, part: ResultPart, now: float) -> bool:
        """Commits a part and its counts; False when the worker no longer holds the lease.

        Saving a part again that is already committed changes nothing and returns True: a
        retry after a commit whose answer was lost counts nothing twice.
        """
        ...

    def canceling_batch_ids(self) -> set[str]: ...

    def count_batches_by_status(self) -> dict[str, int]:
        """Batches by status, for the metrics: one GROUP BY on the indexed status."""
        ...

    def expedite_overdue(self, now: float) -> int:
        """Moves chunks of canceling or expired batches to the front of the queue."""
        ...

    def archive_older_than(self, created_before: float, now: float) -> int:
        """Drops the results of ended batches created before the cutoff; marks them archived."""
        ...

    # --- events and webhooks ------------------------------------------------------------------
    def events_after(
        self, owner: str, after: int, batch_id: str | None, limit: int
    ) -> list[BatchEvent]:
        """The owner's events numbered after `after` (of `batch_id` only, if given), in order."""
        ...

    def last_event_number(self, owner: str) -> int:
        """The number of the owner's latest event; 0 before any."""
        ...

    def forget_events(self, progress_before: float, before: float) -> int:
        """Housekeeping: deletes batch.progress events older than `progress_before` and every
        event older than `before` (a pending delivery's excepted), and the finished deliveries
        older than `before`, a bounded number a call; returns how many events."""
        ...

    def on_events_written(self, callback: Callable[[str], object]) -> None:
        """Registers a wake-up called, from any thread, with the workspace of events just
        committed, or with "" when some may have gone unheard."""
        ...

    def create_webhook(self, webhook: WebhookRow) -> None: ...

    def webhooks(self, owner: str) -> list[WebhookRow]:
        """The owner's endpoints, oldest first."""
        ...

    def delete_webhook(self, owner: str, webhook_id: str) -> bool:
        """Deletes the endpoint and its deliveries still pending; False if unknown."""
        ...

    def rotate_webhook_secret(
        self, owner: str, webhook_id: str, secret: str, previous_until: float
    ) -> WebhookRow | None:
        """Signs with `secret` from now on, and with the current one too until `previous_until`."""
        ...

    def workspace_webhook_secret(self, owner: str, candidate: str) -> str:
        """The secret that signs deliveries to batches' own webhook_url: `candidate` the first
        time it is asked for, the same one ever after."""
        ...

    def deliveries(
        self, owner: str, webhook_id: str, limit: int, before_id: int | None
    ) -> list[DeliveryRow]:
        """The endpoint's deliveries, newest first."""
        ...

    def batch_deliveries(self, owner: str, batch_id: str, limit: int) -> list[DeliveryRow]:
        """The deliveries of the batch's events to every endpoint, newest first."""
        ...

    def redeliver(self, owner: str, webhook_id: str, delivery_id: int, now: float) -> bool:
        """Attempts the delivery again now, whatever became of it; False if unknown."""
        ...

    def lease_deliveries(
        self, worker_id: str, limit: int, now: float, lease_seconds: float
    ) -> list[LeasedDelivery]:
        """Due deliveries no other engine holds, leased to this one for `lease_seconds`."""
        ...

    def finish_attempt(self, worker_id: str, delivery_id: int, outcome: DeliveryOutcome) -> bool:
        """Records an attempt of a delivery still leased to the worker; False if it is not."""
        ...

    # --- API keys ------------------------------------------------------------------------------
    def create_api_key(self, key: ApiKeyRow) -> None:
        """Stores a new key; ids and prefixes are unique."""
        ...

    def api_keys(self) -> list[ApiKeyRow]:
        """Every key, revoked ones included, oldest first."""
        ...

    def revoke_api_key(self, key_id: str, now: float) -> ApiKeyRow | None:
        """Marks the key revoked, once: revoking it again keeps the first time. None if unknown."""
        ...

    def close(self) -> None: ...

    def schema_problem(self) -> str | None:
        """What makes the database's schema differ from the one this process started with (a
        newer `batchgate migrate`, a dropped table), or None. Raises when the database cannot
        be reached. Cheap: /readyz asks every few seconds."""
        ...


SQLITE_PREFIX = "sqlite:///"


def open_store(database_url: str, pool_size: int = 10) -> Store:
    if database_url.startswith(SQLITE_PREFIX):
        from batchgate.storage.sqlite import SQLiteStore

        return SQLiteStore(database_url.removeprefix(SQLITE_PREFIX))
    if database_url.startswith(("postgresql://", "postgres://")):
        from batchgate.storage.postgres import PostgresStore

        return PostgresStore(database_url, pool_size)
    raise ValueError(
        f"unsupported database URL {database_url!r}:"
        " use sqlite:///PATH or postgresql://USER@HOST/DATABASE"
    )


def migrate_database(database_url: str) -> list[int]:
    """`batchgate migrate`: brings the database to this release's schema; the versions applied."""
    if database_url.startswith(SQLITE_PREFIX):
        from batchgate.storage.sqlite import SQLiteStore

        # Opening the store upgrades the file, with the store's own settings (page size, WAL).
        store = SQLiteStore(database_url.removeprefix(SQLITE_PREFIX))
        store.close()
        return store.upgraded
    from batchgate.storage.migrations.postgres import migrate

    return migrate(database_url)


def schema_status_of(database_url: str) -> SchemaStatus:
    """The versions a database has and those this release ships, changing nothing."""
    if database_url.startswith(SQLITE_PREFIX):
        from batchgate.storage.migrations.sqlite import file_schema_status

        return file_schema_status(database_url.removeprefix(SQLITE_PREFIX))
    from batchgate.storage.migrations.postgres import schema_status

    return schema_status(database_url)
