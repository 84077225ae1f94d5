"""The rules of batches, shared by every front-end.

Front-ends (Anthropic's Message Batches API in api/) translate their wire into these calls and
the answers back; the store holds the SQL. What may be done to a batch is decided here, once:
who sees it, when it may be canceled or deleted, when its results and requests may be read,
what a create stores, and that the engines hear of new work.

Every call is scoped to an owner, the caller's workspace: another owner's batch is not found,
exactly as a batch that never existed, so ids never leak. The calls raise:

    BatchNotFound   no such batch for this owner, or its results archived (404 on the wire)
    WrongState      the batch exists but its state forbids the call (400 on the wire)

Store calls block, so each runs on a worker thread; what streams (results, requests) is read
from the database a few parts at a time on such threads, never all at once.
"""

import builtins
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence

import anyio.to_thread
import orjson

from batchgate.config.settings import Settings
from batchgate.lifecycle.ids import OPENAI_BATCH_PREFIX, new_batch_id
from batchgate.service import result_views, retries
from batchgate.service.idempotency import (
    ABANDONED_CLAIM_SECONDS,
    IdempotencyKeyReused,
    IdempotentCreate,
    IdempotentCreateInProgress,
)
from batchgate.service.part_watch import PartWatch
from batchgate.service.point_reads import point_read
from batchgate.service.result_views import ResultFilter, ResultView
from batchgate.service.retries import Lineage, RetrySelection
from batchgate.storage.base import (
    EVERY_BATCH,
    NO_OPTIONS,
    BatchFilter,
    BatchOptions,
    BatchRow,
    NewChunk,
    RetryRow,
    Store,
    StoredChunk,
    StoreUnavailable,
    WrongState,
)

log = logging.getLogger("batchgate.service")

__all__ = [
    "BatchNotFound",
    "BatchService",
    "IdempotencyKeyReused",
    "IdempotentCreateInProgress",
    "WrongState",
]
USER_CANCEL = {"type": "user"}


class BatchNotFound(Exception):
    """No batch with that id for this owner (or its results are gone): 404 on the wire."""


def _not_found(batch_id: str) -> BatchNotFound:
    return BatchNotFound(f"No message batch with id {batch_id!r}.")


async def _on_threads(blobs: Iterator[bytes]) -> AsyncIterator[bytes]:
    """A blocking iterator (database reads), read without blocking the event loop."""
    while (blob := await anyio.to_thread.run_sync(next, blobs, None)) is not None:
        yield blob


def _requests_as_jsonl(chunks: Iterator[StoredChunk], wanted: frozenset[str]) -> Iterator[bytes]:
    """`{"custom_id", "params"}` lines of each chunk's requests, those whose result type is in
    `wanted` only, unless it is empty."""
    for chunk in chunks:
        custom_ids = orjson.loads(chunk.custom_ids)
        params = orjson.loads(chunk.params)
        types = _result_types(chunk.result_lines) if wanted else {}
        lines = [
            orjson.dumps({"custom_id": custom_id, "params": request_params})
            for custom_id, request_params in zip(custom_ids, params, strict=True)
            if not wanted or types.get(custom_id) in wanted
        ]
        if lines:
            yield b"\n".join(lines) + b"\n"


def _result_types(lines: bytes) -> dict[str, str]:
    types = {}
    for line in lines.splitlines():
        parsed = orjson.loads(line)
        types[parsed["custom_id"]] = parsed["result"]["type"]
    return types


WHOLE_RESULTS = ResultView()
EVERY_LINE = ResultFilter()


def _require_kind(batch_id: str, openai: bool) -> None:
    """OpenAI batches (`batch_…`) share the store but not the endpoints: each API finds only
    its own, as a batch of another workspace is not found."""
    if batch_id.startswith(OPENAI_BATCH_PREFIX) != openai:
        raise _not_found(batch_id)


def _require_ended(batch: BatchRow) -> None:
    if batch.status != "ended":
        raise WrongState(
            f"Batch {batch.id} is still {batch.status}; results are ready once it has ended"
            " (partial=true reads those committed so far)."
        )


class BatchService:
    def __init__(self, store: Store, settings: Settings, clock: Callable[[], float]) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._part_watch = PartWatch(store.on_parts_committed)

    async def create(
        self,
        owner: str,
        total: int,
        chunks: Iterable[NewChunk],
        options: BatchOptions = NO_OPTIONS,
        completion_window: float | None = None,
        idempotent: IdempotentCreate | None = None,
        batch_id: str | None = None,
        retry_of: RetryRow | None = None,
    ) -> tuple[BatchRow, bool]:
        """Stores a batch of `total` requests, in chunks read lazily, and wakes the engines.
        Returns once the batch is durably stored, with False; or, for a create `idempotent`
        whose key made a batch already, that batch and True (without storing anything).

        The batch expires after `completion_window` seconds, at most the server's
        `expiry_seconds`. Raises IdempotencyKeyReused and IdempotentCreateInProgress. An OpenAI
        batch brings its own `batch_id`, and its retry the `retry_of` that makes it a child."""
        now = self._clock()
        if idempotent is not None:
            replayed = await self._claim(owner, idempotent, now)
            if replayed is not None:
                return replayed, True
            options = dataclasses.replace(options, idempotency_key=idempotent.key)
        lifetime = self._settings.expiry_seconds
        if completion_window is not None:
            lifetime = min(lifetime, completion_window)
        try:
            batch = await anyio.to_thread.run_sync(
                self._store.create_batch,
                batch_id or new_batch_id(),
                owner,
                now,
                now + lifetime,
                total,
                chunks,
                retry_of,
                options,
            )
        except BaseException:
            if idempotent is not None:
                await self._release(owner, idempotent)
            raise
        await self._announce_work()
        return batch, False

    async def _claim(self, owner: str, idempotent: IdempotentCreate, now: float) -> BatchRow | None:
        """Claims the create's key: None once claimed, else the batch its first create made."""
        held = await anyio.to_thread.run_sync(
            self._store.claim_idempotency_key,
            owner,
            idempotent.key,
            idempotent.digest,
            now,
            now - self._settings.idempotency_seconds,
            now - ABANDONED_CLAIM_SECONDS,
        )
        if held is None:
            return None
        if held.digest != idempotent.digest:
            raise IdempotencyKeyReused(
                f"Idempotency-Key {idempotent.key!r} was used for a create with a different body."
            )
        if held.batch_id is None:
            raise IdempotentCreateInProgress(
                f"The create with Idempotency-Key {idempotent.key!r} is still being stored:"
                " retry in a moment."
            )
        return await self.get(owner, held.batch_id)

    async def _release(self, owner: str, idempotent: IdempotentCreate) -> None:
        """Gives the key of a failed create back, so that its retry may create the batch. With
        the database away it stays claimed until ABANDONED_CLAIM_SECONDS have passed."""
        with anyio.CancelScope(shield=True):
            try:
                await anyio.to_thread.run_sync(
                    self._store.release_idempotency_key, owner, idempotent.key, idempotent.digest
                )
            except StoreUnavailable as error:
                log.warning("could not release Idempotency-Key %r: %s", idempotent.key, error)

    async def get(self, owner: str, batch_id: str, openai: bool = False) -> BatchRow:
        """A Message Batch; with `openai`, an OpenAI batch's row (service/openai_batches.py)."""
        _require_kind(batch_id, openai)
        batch = await point_read(self._store, self._store.get_batch, owner, batch_id)
        if batch is None:
            raise _not_found(batch_id)
        return batch

    async def list(
        self,
        owner: str,
        limit: int,
        after_id: str | None,
        before_id: str | None,
        only: BatchFilter = EVERY_BATCH,
    ) -> tuple[list[BatchRow], bool]:
        """A page, newest first, and whether more exist beyond it in the walking direction."""
        return await anyio.to_thread.run_sync(
            self._store.list_batches, owner, limit, after_id, before_id, only
        )

    async def cancel(self, owner: str, batch_id: str, openai: bool = False) -> BatchRow:
        """Starts canceling a batch still in progress; a canceling one is returned as it is."""
        _require_kind(batch_id, openai)
        batch = await anyio.to_thread.run_sync(
            self._store.cancel_batch, owner, batch_id, self._clock(), USER_CANCEL
        )
        if batch is None:
            raise _not_found(batch_id)
        await self._announce_work()
        return batch

    async def delete(self, owner: str, batch_id: str, cascade: bool = False) -> None:
        """Deletes an ended batch with its requests and results; with `cascade`, its retries
        too, the last first. A batch with a retry is refused without it (WrongState)."""
        _require_kind(batch_id, openai=False)
        if cascade:
            chain, _ = await self._chain(owner, await self.get(owner, batch_id))
            for member in chain:
                if member.status != "ended":
                    raise WrongState(
                        f"Batch {member.id} of the retry chain is still {member.status}; only"
                        " ended batches can be deleted. Cancel it first."
                    )
            for retry in reversed(chain[1:]):
                await anyio.to_thread.run_sync(self._store.delete_batch, owner, retry.id)
        if not await anyio.to_thread.run_sync(self._store.delete_batch, owner, batch_id):
            raise _not_found(batch_id)

    async def results(
        self,
        owner: str,
        batch_id: str,
        view: ResultView = WHOLE_RESULTS,
        wanted: ResultFilter = EVERY_LINE,
        openai: bool = False,
    ) -> tuple[int | None, AsyncIterator[bytes]]:
        """The result lines a view asks for, as JSONL blobs, and for views in commit order the
        position of the last part committed as the response began. Checks before it streams.
        With `openai`, an OpenAI batch's output and error lines."""
        batch = await self._readable(owner, batch_id, "results", openai)
        if view.merged:
            chain, _ = await self._chain(owner, batch)
            if not view.partial:
                for member in chain:
                    _require_ended(member)
            return None, result_views.merged(self._store, [b.id for b in chain], wanted)
        if not view.in_commit_order:
            _require_ended(batch)
            blobs = self._store.iter_results(batch.id)
            return None, _on_threads(result_views.filtered(blobs, wanted))
        if not (view.partial or view.follow):
            _require_ended(batch)
        after = -1 if view.after_part is None else view.after_part
        last = await anyio.to_thread.run_sync(self._store.last_part_position, batch.id)
        if view.follow:
            lines = result_views.followed(
                self._store, self._part_watch, owner, batch.id, after, wanted
            )
        else:
            lines = result_views.partial(self._store, batch.id, after, last, wanted)
        return last, result_views.skipping(lines, view.skip_lines)

    def stop_following(self) -> None:
        """The server is shutting down: responses that follow a batch end now (any thread)."""
        self._part_watch.close()

    async def retry(self, owner: str, batch_id: str, selection: RetrySelection) -> BatchRow:
        """A new batch of the ended batch's requests whose results the selection takes, same
        custom_ids and params, recorded as its retry. WrongState when nothing matches."""
        parent = await self._readable(owner, batch_id, "requests")
        if parent.status != "ended":
            raise WrongState(
                f"Batch {parent.id} is still {parent.status}; only ended batches can be retried."
            )
        taken = await anyio.to_thread.run_sync(
            retries.count_taken, self._store, parent.id, selection
        )
        if not taken.total:
            raise WrongState(
                f"No request of batch {parent.id} has a result to retry"
                f" (result types {sorted(selection.result_types)}"
                + (
                    f", error types {sorted(selection.error_types)})"
                    if selection.error_types
                    else ")"
                )
            )
        now = self._clock()
        child_id = new_batch_id()
        chunks = retries.child_chunks(self._store, parent.id, selection, self._settings.chunk_size)
        child = await anyio.to_thread.run_sync(
            lambda: self._store.create_batch(
                child_id,
                owner,
                now,
                now + self._settings.expiry_seconds,
                taken.total,
                chunks,
                retry_of=RetryRow(child_id, parent.id, now, taken),
                # A retry keeps its parent's labels, priority, abort policy and webhook_url.
                options=BatchOptions(
                    parent.metadata,
                    parent.priority,
                    parent.abort_policy,
                    webhook_url=parent.webhook_url,
                ),
            )
        )
        await self._announce_work()
        return child

    async def lineage(self, owner: str, batches: Sequence[BatchRow]) -> dict[str, Lineage]:
        """The lineage of those `batches` that are in a retry chain; others are left out."""
        found: dict[str, Lineage] = {}
        for batch in batches:
            if batch.retried_as is not None:
                chain, chain_retries = await self._chain(owner, batch)
                found[batch.id] = Lineage(
                    batch.retry_of,
                    [batch.retried_as],
                    retries.merged_counts(chain, chain_retries),
                )
            elif batch.retry_of is not None:
                found[batch.id] = Lineage(batch.retry_of)
        return found

    async def _chain(
        self, owner: str, batch: BatchRow
    ) -> tuple[builtins.list[BatchRow], builtins.list[RetryRow]]:
        """The batch and each retry in turn down to the last, and the retries between them."""
        chain: builtins.list[BatchRow] = [batch]
        links: builtins.list[RetryRow] = []
        while True:
            rows = await anyio.to_thread.run_sync(self._store.retries_of, [chain[-1].id])
            link = next((row for row in rows if row.parent_id == chain[-1].id), None)
            if link is None:
                return chain, links
            child = await anyio.to_thread.run_sync(self._store.get_batch, owner, link.child_id)
            if child is None:
                return chain, links
            chain.append(child)
            links.append(link)

    async def requests(
        self, owner: str, batch_id: str, result_types: frozenset[str]
    ) -> AsyncIterator[bytes]:
        """The batch's requests as submitted, as `{"custom_id", "params"}` JSONL: only those
        whose result is of one of `result_types`, unless it is empty. Checks before it streams."""
        batch = await self._readable(owner, batch_id, "requests")
        chunks = self._store.iter_request_chunks(batch.id)
        return _on_threads(_requests_as_jsonl(chunks, result_types))

    async def _readable(
        self, owner: str, batch_id: str, what: str, openai: bool = False
    ) -> BatchRow:
        batch = await self.get(owner, batch_id, openai)
        if batch.archived_at is not None:
            raise BatchNotFound(
                f"The {what} of batch {batch.id} were archived after the retention period."
            )
        return batch

    async def _announce_work(self) -> None:
        """Wakes the engines at once. Once the change is committed, a database gone meanwhile
        must not fail the call: the engines find the work on their next poll."""
        try:
            await anyio.to_thread.run_sync(self._store.announce_work)
        except StoreUnavailable as error:
            log.warning("could not announce new work; the engines' next poll finds it: %s", error)
