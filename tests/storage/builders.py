"""Batches, parts and finished chunks for the store tests."""

import orjson

from batchgate.storage.base import (
    NO_OPTIONS,
    BatchOptions,
    BatchRow,
    LeasedChunk,
    NewChunk,
    ResultCounts,
    ResultPart,
    Store,
)

NOW = 1_800_000_000.0
DAY = 86_400.0
LEASE = 30.0
OWNER = "alice"


def create(
    store: Store,
    batch_id: str,
    sizes: tuple[int, ...] = (2,),
    owner: str = OWNER,
    created_at: float = NOW,
    expires_at: float = NOW + DAY,
    options: BatchOptions = NO_OPTIONS,
) -> BatchRow:
    chunks = (
        NewChunk(
            size,
            orjson.dumps([f"{batch_id}/{number}/{i}" for i in range(size)]),
            orjson.dumps([{"chunk": number, "i": i} for i in range(size)]),
        )
        for number, size in enumerate(sizes)
    )
    return store.create_batch(
        batch_id, owner, created_at, expires_at, sum(sizes), chunks, options=options
    )


def result_lines(chunk: LeasedChunk, indices: list[int]) -> bytes:
    custom_ids = orjson.loads(chunk.custom_ids)
    return b"".join(orjson.dumps({"custom_id": custom_ids[i]}) + b"\n" for i in indices)


def part(
    chunk: LeasedChunk,
    number: int,
    indices: list[int],
    outcome: str = "succeeded",
    done: bool = False,
) -> ResultPart:
    counts = ResultCounts(**{outcome: len(indices)})
    lines = result_lines(chunk, indices)
    return ResultPart(chunk.batch_id, chunk.chunk_no, number, indices, lines, counts, done)


def finish(
    store: Store, worker: str, chunk: LeasedChunk, now: float = NOW, outcome: str = "succeeded"
) -> bool:
    """Saves every request of the chunk not done yet, as its last part."""
    todo = [i for i in range(len(orjson.loads(chunk.custom_ids))) if i not in chunk.done_indices]
    return store.save_part(worker, part(chunk, chunk.next_part, todo, outcome, True), now)


def run_everything(store: Store, outcome: str = "succeeded") -> None:
    for chunk in store.lease_chunks("finisher", 1000, NOW, LEASE):
        assert finish(store, "finisher", chunk, outcome=outcome)


def keys(chunks: list[LeasedChunk]) -> list[tuple[str, int]]:
    return [(chunk.batch_id, chunk.chunk_no) for chunk in chunks]
