"""Server-Sent Events of a batch or of a whole workspace (docs/events.md).

Each stream reads the stored events after the last one it sent, then waits to be woken: the
store tells one watch per process of every event committed, by workspace (service/part_watch.py),
so a thousand open streams cost a thousand idle tasks and no database reads until something
happens. `id:` is the event's number: a client that reconnects with Last-Event-ID gets exactly the
events after it.
"""

import asyncio
from collections.abc import AsyncIterator

import anyio.to_thread
import orjson

from batchgate.lifecycle.events import LAST_EVENT_TYPES, event_id, timestamp
from batchgate.service.part_watch import PartWatch
from batchgate.storage.base import BatchEvent, Store

# A comment line this often keeps proxies and clients from taking a quiet stream for a dead one.
KEEP_ALIVE_SECONDS = 15.0
# How long a client waits before it reconnects (the `retry:` hint).
RETRY_MILLISECONDS = 2000
EVENTS_PER_READ = 100


def event_object(event: BatchEvent) -> bytes:
    """An event as streams and the API show it."""
    return orjson.dumps(
        {
            "id": event_id(event.batch_id, event.seq),
            "object": "event",
            "type": event.type,
            "number": event.number,
            "sequence": event.seq,
            "created_at": timestamp(event.created_at),
            "data": orjson.Fragment(event.data),
        }
    )


def sse_message(event: BatchEvent) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (
        event.number,
        event.type.encode(),
        event_object(event),
    )


class EventStreams:
    def __init__(self, store: Store, keep_alive_seconds: float = KEEP_ALIVE_SECONDS) -> None:
        self._store = store
        self._watch = PartWatch(store.on_events_written)
        self._keep_alive_seconds = keep_alive_seconds

    def close(self) -> None:
        """The server is shutting down: streams end now; clients reconnect where they were."""
        self._watch.close()

    async def stream(
        self, owner: str, after: int, batch_id: str | None = None, ended: bool = False
    ) -> AsyncIterator[bytes]:
        """The owner's events after number `after` (of `batch_id` only, if given) as they come;
        a batch's stream ends after its last event, batch.ended or an OpenAI batch's end
        (`ended`: it had ended when asked)."""
        await self._watch.start()
        yield b"retry: %d\n\n" % RETRY_MILLISECONDS
        with self._watch.watching(owner) as news:
            while True:
                news.clear()
                events = await anyio.to_thread.run_sync(
                    self._store.events_after, owner, after, batch_id, EVENTS_PER_READ
                )
                for event in events:
                    yield sse_message(event)
                    after = event.number
                    if batch_id is not None and event.type in LAST_EVENT_TYPES:
                        return
                if len(events) == EVENTS_PER_READ:
                    continue
                if (batch_id is not None and ended) or self._watch.closed:
                    return
                try:
                    await asyncio.wait_for(news.wait(), self._keep_alive_seconds)
                except TimeoutError:
                    yield b": keep-alive\n\n"

    async def latest(self, owner: str) -> int:
        return await anyio.to_thread.run_sync(self._store.last_event_number, owner)
