"""How many chunks an engine takes: enough to stay busy, never more than it needs.

Two engines run in-process here, each with its own store on one PostgreSQL database, as two
workers do.
"""

import asyncio
import time
from collections.abc import Callable

import orjson
import psycopg

from batchgate.config.routes import RouteConfig
from batchgate.config.settings import Settings
from batchgate.engine.routing import Router
from batchgate.engine.worker import CHUNKS_IN_FLIGHT, Engine, chunk_places
from batchgate.storage.base import NewChunk, Store
from batchgate.storage.postgres import PostgresStore

CHUNK_SIZE = 10
SLOW_MS = 4000


def create_batch(store: Store, batch_id: str, chunks: int) -> None:
    new_chunks = [
        NewChunk(
            count=CHUNK_SIZE,
            custom_ids=orjson.dumps([f"r{chunk}-{i}" for i in range(CHUNK_SIZE)]),
            params=orjson.dumps(
                [
                    {
                        "model": "claude-test",
                        "max_tokens": 16,
                        "messages": [{"role": "user", "content": f"prompt {chunk}-{i}"}],
                    }
                    for i in range(CHUNK_SIZE)
                ]
            ),
        )
        for chunk in range(chunks)
    ]
    now = time.time()
    store.create_batch(batch_id, "owner", now, now + 3600, chunks * CHUNK_SIZE, new_chunks)
    store.announce_work()


def chunks_leased_by(database_url: str, worker_id: str) -> int:
    with psycopg.connect(database_url) as db:
        [(count,)] = db.execute(
            "SELECT count(*) FROM chunks WHERE state = 1 AND lease_owner = %s", (worker_id,)
        ).fetchall()
    return int(count)


def ended(store: Store, batch_id: str) -> bool:
    batch = store.get_batch("owner", batch_id)
    return batch is not None and batch.status == "ended"


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_an_engine_takes_as_many_chunks_as_fill_its_width_with_one_to_spare() -> None:
    assert chunk_places(Settings()) == CHUNKS_IN_FLIGHT
    assert chunk_places(Settings(max_concurrency=1024)) == CHUNKS_IN_FLIGHT
    assert chunk_places(Settings(max_concurrency=4096)) == 6
    assert chunk_places(Settings(max_concurrency=4096, chunk_size=2048)) == CHUNKS_IN_FLIGHT
    assert chunk_places(Settings(chunk_size=CHUNK_SIZE, max_concurrency=64)) == 8


def test_a_worker_on_a_slow_route_leaves_the_rest_of_a_batch_to_others(database_url: str) -> None:
    """Chunks that take seconds are not leased ahead: a second worker shares the batch at once.
    Each takes as many as fill its width (64 requests in chunks of 10: 8 chunks), no more."""
    store, other_store = PostgresStore(database_url), PostgresStore(database_url)
    settings = Settings(chunk_size=CHUNK_SIZE, max_concurrency=64)
    places = chunk_places(settings)
    # Slow enough that the second engine starts, on a loaded machine too, before the first
    # engine's chunks end (it would then take the rest of the batch itself, rightly).
    slow = (RouteConfig(model="*", backend="simulator", latency_ms=SLOW_MS),)
    first = Engine(store, settings, Router.from_config(slow, settings))
    second = Engine(other_store, settings, Router.from_config(slow, settings))

    def leased_by(engine: Engine) -> int:
        return chunks_leased_by(database_url, engine.worker_id)

    async def scenario() -> None:
        running_first = asyncio.create_task(first.run())
        # A chunk of the slow route ends first: the engine knows its chunks are slow.
        create_batch(store, "msgbatch_warmup", chunks=1)
        await wait_until(lambda: ended(store, "msgbatch_warmup"), timeout=20)

        create_batch(store, "msgbatch_shared", chunks=2 * places)
        await wait_until(lambda: leased_by(first) == places)
        running_second = asyncio.create_task(second.run())
        await wait_until(lambda: leased_by(second) == places)
        assert leased_by(first) == places

        await wait_until(lambda: ended(store, "msgbatch_shared"), timeout=20)
        first.stop()
        second.stop()
        await asyncio.gather(running_first, running_second)

    try:
        asyncio.run(scenario())
        batch = store.get_batch("owner", "msgbatch_shared")
        assert batch is not None and batch.succeeded == 2 * places * CHUNK_SIZE
    finally:
        store.close()
        other_store.close()
