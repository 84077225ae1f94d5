"""The execution engine: leases chunks of requests, runs each on its backend, commits results.

One worker runs a handful of chunks at once (more when its width, `max_concurrency`, takes
more chunks to fill) and, while chunks end fast, leases a couple more ahead, so that a chunk that
ends is replaced at once. Inside a chunk, *lanes* (tasks) pull the
next request only once they hold one of the worker's concurrency slots, so a cancel or an expiry
takes effect on every request not yet started. A request whose route has flow control then
waits for its turn on the route (engine/flow.py), retried there when it fails transiently
(engine/retries.py).

Finished result lines are committed in parts every `flush_seconds` and when the chunk is done;
each part commits with the batch's counters, which keeps `request_counts` live and lets a
restarted worker skip what is already done.

Chunks still leased to engines that are gone (a process killed) go back in the queue at the
next poll, not when their leases lapse: on PostgreSQL the other engines tell by the lock each
engine holds while it lives (storage/postgres_presence.py).

While the database is away (engine/outages.py) every store call waits and retries: leasing
pauses, finished results stay in memory until their part commits, and leases are renewed
again once the database is back.

Shutting down (`stop`) ends leasing, lets the requests already started finish for up to
`shutdown_seconds`, commits them, and hands the unfinished chunks back to the queue.
"""

import asyncio
import contextlib
import logging
import math
import operator
import os
import secrets
import socket
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import msgspec
import orjson

from batchgate.backends.translate_openai import DEFAULT_MAX_TOKENS
from batchgate.config.prices import NO_PRICES, PriceTable
from batchgate.config.settings import Settings
from batchgate.engine.abort_watch import AbortWatch
from batchgate.engine.flow import Overdue, Withdrawn
from batchgate.engine.gc_pacing import CollectionPacer
from batchgate.engine.internal_errors import InternalErrors
from batchgate.engine.openai_requests import (
    CHAT_COMPLETIONS,
    OpenAIRequest,
    answer_tokens,
)
from batchgate.engine.outages import Outages, retry_delay
from batchgate.engine.retries import call_with_retries
from batchgate.engine.routing import Route, Router
from batchgate.engine.webhook_delivery import WebhookDelivery
from batchgate.errors import RequestError
from batchgate.lifecycle import openai_results, results
from batchgate.lifecycle.ids import file_ids_before
from batchgate.lifecycle.openai_input import InputSpan, Line, body_of
from batchgate.lifecycle.params import validate_params
from batchgate.lifecycle.simple_params import (
    SimpleParams,
    decode_simple_chat,
    decode_simple_chat_line,
    decode_simple_chat_lines,
    decode_simple_params,
)
from batchgate.lifecycle.usage import ChatTokens, usage_by_model
from batchgate.observability import metrics
from batchgate.storage.base import LeasedChunk, ResultCounts, ResultPart, Store, StoreUnavailable

log = logging.getLogger("batchgate.engine")
RAW_PARAMS = msgspec.json.Decoder(list[msgspec.Raw])

# Places for chunks: enough to keep the CPU busy while others commit; more only add memory,
# unless the engine's width takes more chunks to fill (chunk_places).
CHUNKS_IN_FLIGHT = 4
# While chunks end fast (within FAST_CHUNK_SECONDS), as those of requests answered at once do, a
# chunk leaves its place to the next once this share of its requests has started, and finishes
# the rest beside it; and chunks are leased ahead. Such chunks advance in step, turn by turn:
# holding their places to the end, they would all end together, then all wait for a lease,
# which under load waits for the database's writer and the GIL.
FAST_CHUNK_SECONDS = 1.0
STARTED_SHARE_TO_LEAVE_PLACE = 0.5
CHUNKS_LEASED_AHEAD = 2
# A lane running requests that never wait (the zero-latency simulator) gives the event loop back
# this often, so that the other chunks, lease renewals and cancels get their turns.
MAX_TURN_SECONDS = 0.001
# Chunks running at once, those that left their places included, are at most this many times
# the places; beyond the places, a chunk is also started as soon as new work is announced (and
# beyond this, one of a workspace with no chunk running).
MOST_CHUNKS_PER_PLACE = 2
# The largest chunk of an input file's lines that is decoded at once (_simple_chats).
SIMPLE_CHATS_AT_ONCE_BYTES = 1024 * 1024
IDLE_POLL_SECONDS = 0.25
# How long a thread that wants the GIL waits for the busy one to let go (Python's default: 5 ms).
# Store calls take the GIL back after each statement, so with 5 ms a commit or a lease took tens
# of milliseconds while the engine ran requests answered at once; in `serve`, an API request
# hands the GIL over a few times too, and this bounds its latency (docs/benchmarks.md).
GIL_SWITCH_SECONDS = 0.0002
HOUSEKEEPING_SECONDS = 1.0
# How often housekeeping looks for the pieces of uploads that never became files (a server that
# stopped mid-upload), and how long after its body's timeout an upload counts as abandoned.
ABANDONED_UPLOADS_SECONDS = 600.0
ABANDONED_UPLOAD_GRACE_SECONDS = 3600.0


def chunk_places(settings: Settings) -> int:
    """Places for chunks: CHUNKS_IN_FLIGHT, or as many as fill the engine's width with one to
    spare. A slow, wide upstream (a thousand requests in flight, each for seconds) would
    otherwise wait on the few chunks that four places hold; and each chunk's requests end
    together, so the spare keeps the width full while one ends and the next is leased."""
    return max(CHUNKS_IN_FLIGHT, math.ceil(settings.max_concurrency / settings.chunk_size) + 1)


class LeaseLost(Exception):
    """Another worker has taken over the chunk; this worker's unsaved results are dropped."""


@dataclass(slots=True)
class BackendCall:
    """A valid request whose route must be awaited: an upstream, a model, a slow simulator."""

    custom_id: str
    params: dict[str, Any]
    route: Route
    # A request of an OpenAI batch: its endpoint's body, and how it is invoked.
    openai: OpenAIRequest | None = None


# A finished request: its result line, the outcome (succeeded, errored, canceled, expired), the
# route it ran on, "" when it never reached one (canceled, expired, invalid, unknown model), and
# its answer's tokens when it succeeded: its Message, or an OpenAI answer's ChatTokens (its usage
# is summed per part, not per request).
Finished = tuple[bytes, str, str, dict[str, Any] | ChatTokens | None]
_LINE = operator.itemgetter(0)
_OUTCOME_AND_ROUTE = operator.itemgetter(1, 2)
_TOKENS = operator.itemgetter(3)


class PartBuffer:
    """Result lines of one chunk that are finished but not yet committed."""

    def __init__(self, chunk: LeasedChunk) -> None:
        self.chunk = chunk
        self.next_part = chunk.next_part
        self.indices: list[int] = []
        self.finished: list[Finished] = []
        self.last_flush = time.monotonic()

    def add(self, index: int, finished: Finished) -> None:
        self.indices.append(index)
        self.finished.append(finished)

    def take(self, chunk_done: bool) -> tuple[ResultPart, Counter[tuple[str, str]]]:
        """The part to commit, and its requests by outcome and route for the metrics."""
        # Tallied here, once per part, rather than as each request finishes.
        tallies = Counter(map(_OUTCOME_AND_ROUTE, self.finished))
        counts = ResultCounts()
        for (outcome, _), count in tallies.items():
            setattr(counts, outcome, getattr(counts, outcome) + count)
        lines = list(map(_LINE, self.finished))
        usage = usage_by_model(filter(None, map(_TOKENS, self.finished)))
        part = ResultPart(
            batch_id=self.chunk.batch_id,
            chunk_no=self.chunk.chunk_no,
            part=self.next_part,
            indices=self.indices,
            lines=b"\n".join(lines) + b"\n" if lines else b"",
            counts=counts,
            chunk_done=chunk_done,
            usage=usage,
        )
        if lines:
            self.next_part += 1
        self.indices, self.finished = [], []
        self.last_flush = time.monotonic()
        return part, tallies


class Engine:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        router: Router,
        prices: PriceTable = NO_PRICES,
    ) -> None:
        self._store = store
        self._settings = settings
        self._router = router
        self._abort_watch = AbortWatch(store, prices)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._outages = Outages()
        # Its store calls wait out the same outages, said once for the whole engine.
        self._webhooks = WebhookDelivery(store, settings, self.worker_id, self._outages)
        self._wake = asyncio.Event()
        self._work_announced = False
        self._slots = asyncio.Semaphore(settings.max_concurrency)
        self._places = chunk_places(settings)
        self._most_chunks = MOST_CHUNKS_PER_PLACE * self._places
        self._canceling: set[str] = set()
        # Canceling batches whose requests waiting on routes were told to stop waiting.
        self._withdrawn: frozenset[str] = frozenset()
        # The chunks in flight, by the task that runs each.
        self._chunks: dict[asyncio.Task[None], LeasedChunk] = {}
        # Those of them that have left their place (FAST_CHUNK_SECONDS).
        self._left_place: set[asyncio.Task[None]] = set()
        self._leased_ahead: deque[LeasedChunk] = deque()
        # Until a chunk has ended, chunks are taken to be fast where some route answers at once.
        self._last_chunk_seconds = 0.0 if router.answers_any_at_once else math.inf
        self._internal_errors = InternalErrors()
        self._next_housekeeping = 0.0
        self._next_abandoned_uploads = 0.0
        self._next_poll = 0.0
        self.running = False
        self.stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def notify(self) -> None:
        """Something changed (a batch created or canceled): look for work now."""
        self._work_announced = True
        self._wake.set()

    def stop(self) -> None:
        """Begins the graceful shutdown; `run` returns once it is done. Any thread may call it
        (in `serve`, the signal arrives on the API's thread)."""
        self.stopping = True
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        collections = CollectionPacer()
        collections.start()
        sys.setswitchinterval(GIL_SWITCH_SECONDS)
        loop = self._loop = asyncio.get_running_loop()
        # Announcements arrive on other threads (a NOTIFY listener, an API worker thread).
        await self._outages.retry(
            self._store.on_work_announced, lambda: loop.call_soon_threadsafe(self.notify)
        )
        # From here on the other engines see this one alive; once it is gone, they take its
        # chunks at once rather than when their leases lapse.
        await self._outages.retry(self._store.register_engine, self.worker_id)
        self.running = True
        try:
            async with asyncio.TaskGroup() as group:
                # Leases stay renewed while the chunks in flight finish during a shutdown.
                renewing = group.create_task(self._renew_leases())
                group.create_task(self._webhooks.run())
                await self._dispatch()
                # Here, not in `stop`: a stop that came before this loop ran could not reach it.
                self._webhooks.stop()
                await self._drain()
                renewing.cancel()
        finally:
            collections.stop()
            self.running = False
            metrics.REQUESTS_IN_FLIGHT.set(0)
            for task in self._chunks:
                task.cancel()
            await self._router.aclose()

    async def _drain(self) -> None:
        """Waits for the chunks in flight to commit what they started, then releases them."""
        if self._chunks:
            _, unfinished = await asyncio.wait(
                set(self._chunks), timeout=self._settings.shutdown_seconds
            )
            for task in unfinished:
                task.cancel()
            if unfinished:
                await asyncio.wait(unfinished)
                log.warning(
                    "shutdown: %d chunks did not finish within %.0f s; their uncommitted"
                    " requests will run again",
                    len(unfinished),
                    self._settings.shutdown_seconds,
                )
        try:
            released = await anyio.to_thread.run_sync(self._store.release_leases, self.worker_id)
            if released:
                await anyio.to_thread.run_sync(self._store.announce_work)
        except StoreUnavailable as error:
            # No waiting for the database on the way out: the leases lapse by themselves.
            log.warning("shutdown: could not release the unfinished chunks: %s", error)
            return
        log.info("shutdown: %d unfinished chunks released to the queue", released)

    async def _dispatch(self) -> None:
        failures = 0
        while not self.stopping:
            self._wake.clear()
            announced, self._work_announced = self._work_announced, False
            try:
                leased = await self._lease_more(announced)
            except StoreUnavailable as error:
                # Not retried in place, so that a shutdown need not wait for the database.
                if failures == 0:
                    self._outages.began(error)
                self._work_announced = True
                await asyncio.sleep(retry_delay(failures))
                failures += 1
                continue
            if failures:
                self._outages.ended()
            failures = 0
            if leased:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), IDLE_POLL_SECONDS)

    async def _lease_more(self, announced: bool) -> bool:
        """Housekeeping, then chunks for the free places and to lease ahead; whether any were
        leased."""
        await self._housekeeping(announced)
        if self.stopping:
            return False
        self._start_leased_ahead()
        start_now = self._free_places()
        if announced and start_now == 0:
            # The queue's head is a new batch's first chunk (or a canceled one's): it starts
            # now instead of after a running chunk ends, which on a slow route could take
            # minutes; beyond the most chunks in flight only if its workspace has nothing
            # running here, so that another workspace's creates cannot have taken every extra
            # place.
            start_now = 1
        ahead = CHUNKS_LEASED_AHEAD if self._chunks_end_fast() else 0
        wanted = start_now + max(0, ahead - len(self._leased_ahead))
        if wanted <= 0:
            return False
        leased = await anyio.to_thread.run_sync(
            self._store.lease_chunks,
            self.worker_id,
            wanted,
            time.time(),
            self._settings.lease_seconds,
        )
        held = self._held()
        for chunk in leased:
            if _key(chunk) in held:
                # Already held here: its lease lapsed while the database was away, or it was
                # recovered while this engine's lock was (storage/postgres_presence.py).
                continue
            if start_now > 0 and not self.stopping and self._may_start_beside_places(chunk):
                self._start(chunk)
                start_now -= 1
            else:
                self._leased_ahead.append(chunk)
        return bool(leased)

    def _may_start_beside_places(self, chunk: LeasedChunk) -> bool:
        if len(self._chunks) < self._most_chunks:
            return True
        return all(running.workspace != chunk.workspace for running in self._chunks.values())

    def _free_places(self) -> int:
        in_places = len(self._chunks) - len(self._left_place)
        return max(0, min(self._places - in_places, self._most_chunks - len(self._chunks)))

    def _start_leased_ahead(self) -> None:
        for _ in range(min(self._free_places(), len(self._leased_ahead))):
            self._start(self._leased_ahead.popleft())

    def _start(self, chunk: LeasedChunk) -> None:
        task = asyncio.create_task(self._run_chunk_or_release(chunk))
        self._chunks[task] = chunk
        task.add_done_callback(self._chunk_finished)

    def _leave_place(self, task: asyncio.Task[None]) -> None:
        if task not in self._left_place:
            self._left_place.add(task)
            self._place_freed()

    def _chunk_finished(self, task: asyncio.Task[None]) -> None:
        self._chunks.pop(task, None)
        self._left_place.discard(task)
        self._place_freed()

    def _place_freed(self) -> None:
        # The chunk leased ahead starts now; the dispatcher leases its successor.
        if self.running and not self.stopping:
            self._start_leased_ahead()
        self._wake.set()

    def _chunks_end_fast(self) -> bool:
        """Whether the last chunk ended within FAST_CHUNK_SECONDS. Slower chunks gain nothing
        from leaving their places early or from leasing ahead, and chunks held ahead of them
        would wait there while other workers are idle."""
        return self._last_chunk_seconds <= FAST_CHUNK_SECONDS

    def _held(self) -> set[tuple[str, int]]:
        """The chunks leased to this worker: running, or leased ahead."""
        return {*map(_key, self._chunks.values()), *map(_key, self._leased_ahead)}

    async def _run_chunk_or_release(self, chunk: LeasedChunk) -> None:
        started = time.monotonic()
        try:
            await self._run_chunk(chunk)
            self._last_chunk_seconds = time.monotonic() - started
        except LeaseLost:
            log.warning("lost the lease of %s chunk %d to another worker", *_key(chunk))
        except Exception:
            # Renewal would otherwise keep a failed chunk leased to this worker for good.
            log.exception("chunk %s/%d failed; it goes back to the queue", *_key(chunk))
            await self._outages.retry(self._store.release_leases, self.worker_id, _key(chunk))

    async def _housekeeping(self, announced: bool) -> None:
        metrics.REQUESTS_IN_FLIGHT.set(self._settings.max_concurrency - self._slots._value)
        now = time.time()
        # A cancel is announced; one whose announcement was lost is found within a poll, as are
        # the chunks of engines that are gone (from the first turn, before the first lease).
        # Not looked up on every lease: each lookup is a hop to a thread, and under full load
        # such hops held each chunk's place idle for milliseconds.
        if announced or now >= self._next_poll:
            self._next_poll = now + IDLE_POLL_SECONDS
            canceling, recovered = await anyio.to_thread.run_sync(self._poll_store)
            for batch_id in canceling - self._withdrawn:
                self._router.withdraw(batch_id)
            self._withdrawn = frozenset(canceling)
            self._canceling = canceling
            if recovered:
                # Heard by this engine too: with its places all taken, it starts one more chunk.
                await anyio.to_thread.run_sync(self._store.announce_work)
        if now < self._next_housekeeping:
            return
        self._next_housekeeping = now + HOUSEKEEPING_SECONDS
        await anyio.to_thread.run_sync(self._store.expedite_overdue, now)
        archived = await anyio.to_thread.run_sync(
            self._store.archive_older_than, now - self._settings.retention_seconds, now
        )
        if archived:
            log.info("archived %d batches past retention", archived)
        await anyio.to_thread.run_sync(
            self._store.forget_idempotency_keys, now - self._settings.idempotency_seconds
        )
        expired = await anyio.to_thread.run_sync(self._store.delete_expired_files, now)
        if expired:
            log.info("deleted %d expired files", expired)
        if now >= self._next_abandoned_uploads:
            self._next_abandoned_uploads = now + ABANDONED_UPLOADS_SECONDS
            started_before = now - self._settings.body_timeout_seconds
            abandoned = await anyio.to_thread.run_sync(
                self._store.delete_abandoned_uploads,
                file_ids_before(started_before - ABANDONED_UPLOAD_GRACE_SECONDS),
            )
            if abandoned:
                log.info("deleted the pieces of %d abandoned uploads", abandoned)
        await anyio.to_thread.run_sync(
            self._store.forget_events,
            now - self._settings.progress_event_seconds,
            now - self._settings.retention_seconds,
        )

    def _poll_store(self) -> tuple[set[str], int]:
        """The canceling batches, and how many chunks of engines that are gone were recovered."""
        return self._store.canceling_batch_ids(), self._store.recover_abandoned_chunks()

    async def _renew_leases(self) -> None:
        period = self._settings.lease_seconds / 3

        def renew(running: list[tuple[str, int]]) -> None:
            self._store.renew_leases(
                self.worker_id, running, time.time(), self._settings.lease_seconds
            )

        while True:
            await asyncio.sleep(period)
            # Only the chunks held here: one leased by a call whose answer was lost lapses.
            await self._outages.retry(renew, list(self._held()))

    async def _run_chunk(self, chunk: LeasedChunk) -> None:
        custom_ids: list[str] = orjson.loads(chunk.custom_ids)
        # Split into each request's raw JSON, decoded only when its turn comes: decoding a chunk
        # of large params (tools, documents) at once would hold the event loop and memory. A
        # chunk read from its input file is cut into the requests' lines, each decoded as it
        # runs, unless they are few and small and all answered in line (_simple_chats).
        params: Sequence[msgspec.Raw | Line] = ()
        simple_chats = None
        if isinstance(chunk.params, bytes):
            params, in_lines = RAW_PARAMS.decode(chunk.params), False
        else:
            in_lines = True
            simple_chats = self._simple_chats(chunk, chunk.params, len(custom_ids))
            if simple_chats is None:
                params = chunk.params.request_lines()
        if chunk.batch_status == "canceling":
            self._canceling.add(chunk.batch_id)
        pending = [i for i in range(len(custom_ids)) if i not in chunk.done_indices]
        todo = iter(pending)
        leaves_place_early = self._chunks_end_fast()
        leave_place_when_unstarted = int(len(pending) * (1 - STARTED_SHARE_TO_LEAVE_PLACE))
        this_chunk = asyncio.current_task()
        assert this_chunk is not None
        buffer = PartBuffer(chunk)

        max_lanes = min(self._settings.max_concurrency, len(custom_ids) - len(chunk.done_indices))
        lanes = 0
        spare_waiting = False

        def add_spare_lane() -> None:
            # A new lane only gets to run once the current one suspends. Keeping exactly one
            # spare queued lets lanes multiply as fast as backend calls really wait, while a
            # call that returns at once (the zero-latency simulator) costs no task at all.
            nonlocal lanes, spare_waiting
            if not spare_waiting and lanes < max_lanes:
                lanes += 1
                spare_waiting = True
                group.create_task(lane())

        def settle_in_line() -> tuple[int, BackendCall] | bool:
            """Settles requests that take no waiting, for up to one turn of MAX_TURN_SECONDS.

            Returns the first request that must be awaited, with its index; otherwise whether
            this lane should go on (False: nothing left to start, or the engine is stopping).
            """
            turn_ends = time.monotonic() + MAX_TURN_SECONDS
            # A cancel can only arrive between turns; an expiry takes effect from the next turn.
            unstarted = self._unstarted_outcome(chunk)
            if self.stopping:
                return False
            for index in todo:
                custom_id = custom_ids[index]
                if unstarted is not None:
                    result: Finished | BackendCall = unstarted(custom_id)
                elif simple_chats is not None:
                    result = self._simple_chat_at_once(custom_id, simple_chats[index])
                elif chunk.endpoint is not None:
                    result = self._openai_at_once(
                        chunk.endpoint, custom_id, params[index], in_lines
                    )
                else:
                    result = self._answer_at_once(custom_id, params[index])
                if isinstance(result, BackendCall):
                    return index, result
                buffer.add(index, result)
                if self.stopping:
                    return False
                if time.monotonic() >= turn_ends:
                    return True
            return False

        async def lane() -> None:
            nonlocal spare_waiting
            spare_waiting = False
            while True:
                on_route: tuple[int, BackendCall] | None = None
                # One slot covers a whole turn of requests settled in line.
                async with self._slots:
                    settled = settle_in_line()
                    if leaves_place_early and (
                        operator.length_hint(todo) <= leave_place_when_unstarted
                    ):
                        self._leave_place(this_chunk)
                    if settled is False:
                        return
                    if isinstance(settled, tuple):
                        index, call = settled
                        add_spare_lane()
                        if call.route.flow is None:
                            buffer.add(index, await self._call_backend(call))
                        else:
                            on_route = settled
                if on_route is not None:
                    # It waits for its turn on the route without a worker slot, so that one
                    # saturated route never holds up the others.
                    index, call = on_route
                    buffer.add(index, await self._outcome_on_route(chunk, call))
                if time.monotonic() - buffer.last_flush >= self._settings.flush_seconds:
                    await self._save(*buffer.take(chunk_done=False), chunk.abort_policy)
                elif settled is True:
                    await asyncio.sleep(0)

        try:
            async with asyncio.TaskGroup() as group:
                add_spare_lane()
        except* LeaseLost as lost:
            # A lane's part was refused; the group canceled the other lanes.
            raise lost.exceptions[0] from None
        # Its place goes to the next chunk while this one's last part commits.
        self._leave_place(this_chunk)
        # A shutdown stops the lanes early; what they had not started stays queued.
        await self._save(*buffer.take(chunk_done=next(todo, None) is None), chunk.abort_policy)

    async def _save(
        self,
        part: ResultPart,
        finished: dict[tuple[str, str], int],
        abort_policy: Mapping[str, Any] | None,
    ) -> None:
        # Safe to retry: saving a part again that did commit changes nothing.
        saved = await self._outages.retry(
            lambda: self._store.save_part(self.worker_id, part, time.time())
        )
        if not saved:
            raise LeaseLost(f"{part.batch_id} chunk {part.chunk_no}")
        for (outcome, route), count in finished.items():
            metrics.REQUESTS_FINISHED.labels(outcome, route).inc(count)
        if abort_policy is not None and part.indices and part.batch_id not in self._canceling:
            # A cancel it makes is announced: the engines' next turn takes it up, as a user's.
            await self._abort_watch.after_part(part.batch_id, abort_policy)

    def _unstarted_outcome(self, chunk: LeasedChunk) -> Callable[[str], Finished] | None:
        """How the chunk's unstarted requests end now, if it is canceled or expired."""
        if chunk.batch_id in self._canceling:
            return _openai_canceled if chunk.endpoint else _canceled
        if time.time() >= chunk.expires_at:
            return _openai_expired if chunk.endpoint else _expired
        return None

    def _internal_error(self, custom_id: str, route: str, openai: bool = False) -> Finished:
        self._internal_errors.report(custom_id, route)
        lines = openai_results if openai else results
        return (
            lines.errored(custom_id, "api_error", "Internal error while running request."),
            "errored",
            route,
            None,
        )

    def _simple_chats(
        self, chunk: LeasedChunk, span: InputSpan, count: int
    ) -> list[SimpleParams] | None:
        """The requests of a chunk read from its input file as SimpleParams, decoded together,
        when they are all chats of the common shape that their routes answer in line, and the
        chunk is small: cutting out each line to decode it alone takes as long as the
        simulator's answer. A larger chunk's lines are decoded one at a time, as they run, as
        their decoded strings take long to allocate all at once (docs/benchmarks.md)."""
        if (
            chunk.endpoint != CHAT_COMPLETIONS
            or not self._router.answers_any_at_once
            or len(span.data) > SIMPLE_CHATS_AT_ONCE_BYTES
        ):
            return None
        simple = decode_simple_chat_lines(span.data, DEFAULT_MAX_TOKENS)
        if simple is None or len(simple) != count:
            return None
        models = {params.model for params in simple}
        if not all(self._router.route_for(model).answer_at_once for model in models):
            return None
        return simple

    def _openai_at_once(
        self, endpoint: str, custom_id: str, raw: msgspec.Raw | Line, in_line: bool
    ) -> Finished | BackendCall:
        """The same for a request of an OpenAI batch (engine/openai_requests.py): its body, or
        (`in_line`) its line of the input file."""
        route_name = ""
        try:
            # The common shape of a chat request, answered in line, skips the translation's
            # dicts, as Messages params of that shape do (_answer_at_once).
            if endpoint == CHAT_COMPLETIONS and self._router.answers_any_at_once:
                decode = decode_simple_chat_line if in_line else decode_simple_chat
                simple = decode(raw, DEFAULT_MAX_TOKENS)
                if simple is not None and self._router.route_for(simple.model).answer_at_once:
                    return self._simple_chat_at_once(custom_id, simple)
            request = OpenAIRequest.decode(endpoint, body_of(raw) if in_line else raw)
            route = self._router.route_for(request.model)
            if route.answer_at_once is None:
                return BackendCall(custom_id, request.body, route, request)
            route_name = route.config.model
            answer = request.answer_at_once(route.answer_at_once)
            return _openai_succeeded(custom_id, answer, request.model, route_name)
        except RequestError as error:
            return _openai_errored(custom_id, error, route_name)
        except Exception:
            return self._internal_error(custom_id, route_name, openai=True)

    def _simple_chat_at_once(self, custom_id: str, simple: SimpleParams) -> Finished:
        """A chat of the common shape, on a route that answers it in line."""
        route = self._router.route_for(simple.model)
        assert route.answer_at_once is not None
        route_name = route.config.model
        try:
            body, prompt_tokens, completion_tokens = route.answer_at_once.reply_chat_simple(simple)
        except RequestError as error:
            return _openai_errored(custom_id, error, route_name)
        except Exception:
            return self._internal_error(custom_id, route_name, openai=True)
        tokens = (simple.model, prompt_tokens, completion_tokens)
        return _openai_answered(custom_id, body, tokens, route_name)

    def _answer_at_once(
        self, custom_id: str, params: bytes | memoryview | msgspec.Raw
    ) -> Finished | BackendCall:
        """The request's result when it takes no waiting (invalid, or answered in line by its
        route), else the call to await."""
        route_name = ""
        try:
            # Most params have the common shape, which decodes and checks several times faster;
            # only a route answered at once gains from it (upstreams would decode twice).
            simple = decode_simple_params(params) if self._router.answers_any_at_once else None
            if simple is not None:
                route = self._router.route_for(simple.model)
                if route.answer_at_once is not None:
                    route_name = route.config.model
                    message = route.answer_at_once.reply_simple(simple)
                    return _succeeded(custom_id, message, route_name)
            valid = validate_params(msgspec.json.decode(params))
            route = self._router.route_for(valid["model"])
            if route.answer_at_once is None:
                return BackendCall(custom_id, valid, route)
            route_name = route.config.model
            return _succeeded(custom_id, route.answer_at_once.reply(valid), route_name)
        except RequestError as error:
            return _errored(custom_id, error, route_name)
        except Exception:
            return self._internal_error(custom_id, route_name)

    async def _call_backend(self, call: BackendCall) -> Finished:
        route_name = call.route.config.model
        try:
            if call.openai is not None:
                answer = await call.openai.invoke(call.route.backend)
                return _openai_succeeded(call.custom_id, answer, call.openai.model, route_name)
            message = await call.route.backend.create_message(call.params)
        except RequestError as error:
            return _finished_errored(call, error, route_name)
        except Exception:
            return self._internal_error(call.custom_id, route_name, call.openai is not None)
        return _succeeded(call.custom_id, message, route_name)

    async def _outcome_on_route(self, chunk: LeasedChunk, call: BackendCall) -> Finished:
        assert call.route.flow is not None
        route_name = call.route.config.model
        try:
            message = await call_with_retries(
                call.route,
                call.route.flow,
                call.params,
                workspace=chunk.workspace,
                batch_id=chunk.batch_id,
                chunk_no=chunk.chunk_no,
                expires_at=chunk.expires_at,
                slots=self._slots,
                canceled=lambda: chunk.batch_id in self._canceling,
                invoke=None if call.openai is None else call.openai.invoke,
            )
        except Withdrawn:
            lines = results if call.openai is None else openai_results
            return lines.canceled(call.custom_id), "canceled", route_name, None
        except Overdue:
            lines = results if call.openai is None else openai_results
            return lines.expired(call.custom_id), "expired", route_name, None
        except RequestError as error:
            return _finished_errored(call, error, route_name)
        except Exception:
            return self._internal_error(call.custom_id, route_name, call.openai is not None)
        if call.openai is not None:
            return _openai_succeeded(call.custom_id, message, call.openai.model, route_name)
        return _succeeded(call.custom_id, message, route_name)


def _key(chunk: LeasedChunk) -> tuple[str, int]:
    return chunk.batch_id, chunk.chunk_no


def _succeeded(custom_id: str, message: dict[str, Any], route: str) -> Finished:
    return results.succeeded(custom_id, message), "succeeded", route, message


def _canceled(custom_id: str) -> Finished:
    return results.canceled(custom_id), "canceled", "", None


def _expired(custom_id: str) -> Finished:
    return results.expired(custom_id), "expired", "", None


def _errored(custom_id: str, error: RequestError, route: str) -> Finished:
    return results.errored(custom_id, error.error_type, error.message), "errored", route, None


def _finished_errored(call: BackendCall, error: RequestError, route: str) -> Finished:
    if call.openai is not None:
        return _openai_errored(call.custom_id, error, route)
    return _errored(call.custom_id, error, route)


def _openai_succeeded(custom_id: str, answer: dict[str, Any], model: str, route: str) -> Finished:
    return _openai_answered(custom_id, orjson.dumps(answer), answer_tokens(answer, model), route)


def _openai_answered(custom_id: str, body_json: bytes, tokens: ChatTokens, route: str) -> Finished:
    """A request the endpoint answered with the JSON `body_json`, and its tokens."""
    return openai_results.succeeded(custom_id, body_json), "succeeded", route, tokens


def _openai_errored(custom_id: str, error: RequestError, route: str) -> Finished:
    line = openai_results.errored(custom_id, error.error_type, error.message)
    return line, "errored", route, None


def _openai_canceled(custom_id: str) -> Finished:
    return openai_results.canceled(custom_id), "canceled", "", None


def _openai_expired(custom_id: str) -> Finished:
    return openai_results.expired(custom_id), "expired", "", None
