"""How followers of a batch's results learn that parts committed, without polling per follower.

The store calls `notify` with a batch id whenever parts of that batch commit (SQLite: in this
process, after the commit; PostgreSQL: a NOTIFY that every API process LISTENs for on one
connection), or with "" when some notifications may have been lost. Each follower waits on an
event of its own, set from whichever thread heard the news.

Event streams (service/event_streams.py) wait the same way for the events of a workspace: a
watch subscribes to whichever notification of the store it is given.
"""

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator

import anyio.to_thread

# A store's registration of a wake-up: Store.on_parts_committed or Store.on_events_written.
Subscribe = Callable[[Callable[[str], object]], None]


class PartWatch:
    def __init__(self, subscribe: Subscribe) -> None:
        self._subscribe = subscribe
        self._lock = threading.Lock()
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._listening = False
        # Set as the server shuts down: followers end their responses instead of holding the
        # drain up; they reconnect elsewhere with the position they got to.
        self.closed = False

    async def start(self) -> None:
        """Registers with the store at the first follower: on PostgreSQL that opens the
        connection that LISTENs, which processes no one follows in never need."""
        with self._lock:
            if self._listening:
                return
            self._listening = True
        try:
            await anyio.to_thread.run_sync(self._subscribe, self.notify)
        except BaseException:
            # The database is away, say: the next follower tries again.
            with self._lock:
                self._listening = False
            raise

    def close(self) -> None:
        self.closed = True
        self.notify("")

    def notify(self, batch_id: str) -> None:
        with self._lock:
            if batch_id:
                waiters = list(self._waiters.get(batch_id, ()))
            else:
                waiters = [waiter for each in self._waiters.values() for waiter in each]
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)

    @contextlib.contextmanager
    def watching(self, batch_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever parts of `batch_id` commit (or events of the workspace
        `batch_id`, for an event watch), for as long as the block lasts."""
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.setdefault(batch_id, set()).add(waiter)
        try:
            yield waiter[1]
        finally:
            with self._lock:
                waiters = self._waiters[batch_id]
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[batch_id]
