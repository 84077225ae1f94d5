"""Results beyond Anthropic's: filtered, partial, followed as parts commit, merged over retries.

Every line sent is byte for byte the line the full results hold. Lines are read a part at a
time, never all at once: the partial and followed views read the parts in their commit order
(CommittedPart positions), so a reader that passes the position it got to misses nothing and
gets nothing twice.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import anyio.to_thread
import orjson

from batchgate.lifecycle import openai_results
from batchgate.service.part_watch import PartWatch
from batchgate.storage.base import Store

# A follower re-reads once in this long even without news: a notification lost with a dropped
# connection (PostgreSQL's LISTEN) then costs a few seconds, never the rest of the batch.
FOLLOW_RECHECK_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class ResultView:
    """What a results request asks for beyond Anthropic's whole results of an ended batch."""

    partial: bool = False  # what has committed so far, on a running batch too
    follow: bool = False  # and then each part as it commits, until the batch ends
    after_part: int | None = None  # only the parts committed after this position
    skip_lines: int = 0  # of those, leave out the first lines (a follower's reconnect)
    merged: bool = False  # the latest outcome of each custom_id across the retry chain

    @property
    def in_commit_order(self) -> bool:
        return self.partial or self.follow or self.after_part is not None or self.skip_lines > 0


async def skipping(blobs: AsyncIterator[bytes], lines: int) -> AsyncIterator[bytes]:
    """`blobs` less their first `lines` lines. The lines after a position come in the same
    order in every response, so a follower whose response broke off after `lines` whole lines
    gets exactly the rest from a response from the same position that skips them."""
    async for blob in blobs:
        if lines:
            kept = blob.split(b"\n", lines)
            if len(kept) <= lines:
                lines -= blob.count(b"\n")
                continue
            blob, lines = kept[-1], 0
        if blob:
            yield blob


@dataclass(frozen=True, slots=True)
class ResultFilter:
    """Lines whose result type is one of `result_types` and whose custom_id is one of
    `custom_ids`; an empty set keeps every line. Of an OpenAI batch's lines, `openai_output`
    keeps those of its output file (True) or of its error file (False)."""

    result_types: frozenset[str] = frozenset()
    custom_ids: frozenset[str] = frozenset()
    openai_output: bool | None = None

    def __bool__(self) -> bool:
        return bool(self.result_types or self.custom_ids or self.openai_output is not None)

    def apply(self, blob: bytes, excluded: frozenset[str] = frozenset()) -> bytes:
        """The lines of `blob` (JSONL) that pass, and whose custom_id is not `excluded`."""
        if not self and not excluded:
            return blob
        kept = []
        for line in blob.splitlines(keepends=True):
            if self.openai_output is not None and openai_results.is_output(line) != (
                self.openai_output
            ):
                continue
            parsed = orjson.loads(line)
            if parsed["custom_id"] in excluded:
                continue
            if self.custom_ids and parsed["custom_id"] not in self.custom_ids:
                continue
            if self.result_types and parsed["result"]["type"] not in self.result_types:
                continue
            kept.append(line)
        return b"".join(kept)


async def _on_thread(blobs: Iterator[bytes]) -> AsyncIterator[bytes]:
    while (blob := await anyio.to_thread.run_sync(next, blobs, None)) is not None:
        yield blob


def filtered(blobs: Iterator[bytes], wanted: ResultFilter) -> Iterator[bytes]:
    for blob in blobs:
        if kept := wanted.apply(blob):
            yield kept


def parts_up_to(store: Store, batch_id: str, after: int, last: int) -> Iterator[bytes]:
    """The lines of the parts after position `after`, up to `last` included."""
    for part in store.iter_parts_after(batch_id, after):
        if part.position > last:
            return
        yield part.lines


async def partial(
    store: Store, batch_id: str, after: int, last: int, wanted: ResultFilter
) -> AsyncIterator[bytes]:
    """What had committed when the response began: the parts after `after`, up to `last`."""
    async for blob in _on_thread(filtered(parts_up_to(store, batch_id, after, last), wanted)):
        yield blob


async def followed(
    store: Store, watch: PartWatch, owner: str, batch_id: str, after: int, wanted: ResultFilter
) -> AsyncIterator[bytes]:
    """Every part after position `after`, each as soon as it commits, until the batch ends."""
    await watch.start()
    position = after
    with watch.watching(batch_id) as news:
        while True:
            news.clear()
            # The status first: once it says ended, every part is committed, and the read that
            # follows gets the last of them.
            batch = await anyio.to_thread.run_sync(store.get_batch, owner, batch_id)
            parts = store.iter_parts_after(batch_id, position)
            while (part := await anyio.to_thread.run_sync(next, parts, None)) is not None:
                position = part.position
                if kept := wanted.apply(part.lines):
                    yield kept
            if batch is None or batch.status == "ended" or watch.closed:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(news.wait(), FOLLOW_RECHECK_SECONDS)


async def merged(store: Store, chain: list[str], wanted: ResultFilter) -> AsyncIterator[bytes]:
    """One line per custom_id of the chain's first batch: its latest outcome. `chain` runs from
    a batch to its last retry; each retry holds a subset of its parent's custom_ids. The last
    batch's lines come first, then each parent's without those its retry holds. Before every
    batch has ended (partial), a request whose retry has not finished has no line yet.

    The custom_ids of one retry at a time are held in memory, to leave them out of its parent's
    lines: at most the requests retried, never the results."""
    for index in range(len(chain) - 1, -1, -1):
        excluded: frozenset[str] = frozenset()
        if index + 1 < len(chain):
            excluded = await anyio.to_thread.run_sync(_custom_ids_of, store, chain[index + 1])
        async for blob in _on_thread(store.iter_results(chain[index])):
            if kept := wanted.apply(blob, excluded):
                yield kept


def _custom_ids_of(store: Store, batch_id: str) -> frozenset[str]:
    return frozenset(
        custom_id
        for chunk in store.iter_request_chunks(batch_id)
        for custom_id in orjson.loads(chunk.custom_ids)
    )
