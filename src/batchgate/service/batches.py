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

import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator

import anyio.to_thread
import orjson

from batchgate.config.settings import Settings
from batchgate.lifecycle.ids import new_batch_id
from batchgate.storage.base import (
    BatchRow,
    NewChunk,
    Store,
    StoredChunk,
    StoreUnavailable,
    WrongState,
)

log = logging.getLogger("batchgate.service")

__all__ = ["BatchNotFound", "BatchService", "WrongState"]


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


class BatchService:
    def __init__(self, store: Store, settings: Settings, clock: Callable[[], float]) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock

    async def create(self, owner: str, total: int, chunks: Iterable[NewChunk]) -> BatchRow:
        """Stores a batch of `total` requests, in chunks read lazily, and wakes the engines.
        Returns once the batch is durably stored."""
        now = self._clock()
        batch = await anyio.to_thread.run_sync(
            self._store.create_batch,
            new_batch_id(),
            owner,
            now,
            now + self._settings.expiry_seconds,
            total,
            chunks,
        )
        await self._announce_work()
        return batch

    async def get(self, owner: str, batch_id: str) -> BatchRow:
        batch = await anyio.to_thread.run_sync(self._store.get_batch, owner, batch_id)
        if batch is None:
            raise _not_found(batch_id)
        return batch

    async def list(
        self, owner: str, limit: int, after_id: str | None, before_id: str | None
    ) -> tuple[list[BatchRow], bool]:
        """A page, newest first, and whether more exist beyond it in the walking direction."""
        return await anyio.to_thread.run_sync(
            self._store.list_batches, owner, limit, after_id, before_id
        )

    async def cancel(self, owner: str, batch_id: str) -> BatchRow:
        """Starts canceling a batch still in progress; a canceling one is returned as it is."""
        batch = await anyio.to_thread.run_sync(
            self._store.cancel_batch, owner, batch_id, self._clock()
        )
        if batch is None:
            raise _not_found(batch_id)
        await self._announce_work()
        return batch

    async def delete(self, owner: str, batch_id: str) -> None:
        """Deletes an ended batch with its requests and results."""
        if not await anyio.to_thread.run_sync(self._store.delete_batch, owner, batch_id):
            raise _not_found(batch_id)

    async def results(self, owner: str, batch_id: str) -> AsyncIterator[bytes]:
        """The result lines of an ended batch, as JSONL blobs. Checks before it streams."""
        batch = await self._readable(owner, batch_id, "results")
        if batch.status != "ended":
            raise WrongState(
                f"Batch {batch.id} is still {batch.status}; results are ready once it has ended."
            )
        return _on_threads(self._store.iter_results(batch.id))

    async def requests(
        self, owner: str, batch_id: str, result_types: frozenset[str]
    ) -> AsyncIterator[bytes]:
        """The batch's requests as submitted, as `{"custom_id", "params"}` JSONL: only those
        whose result is of one of `result_types`, unless it is empty. Checks before it streams."""
        batch = await self._readable(owner, batch_id, "requests")
        chunks = self._store.iter_request_chunks(batch.id)
        return _on_threads(_requests_as_jsonl(chunks, result_types))

    async def _readable(self, owner: str, batch_id: str, what: str) -> BatchRow:
        batch = await self.get(owner, batch_id)
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
