"""Flow control of one route: when each waiting request may go upstream.

A request goes once every limit allows it: the route's concurrency, which backs off on
overload (AIMD: halved on a 429/529/503, +1 after each run of that many successes, up to the
configured maximum), a pause the upstream asked for, and token buckets for requests, input
tokens and output tokens per minute. Waiting requests are served in turns across workspaces
(a workspace's weight is the number of requests it starts in its turn), then round-robin across
the workspace's batches, lowest chunk first within a batch: one workspace's backlog does not
starve another's few requests, and a small batch is not stuck behind a large one.
"""

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from batchgate.engine.token_bucket import TokenBucket
from batchgate.engine.upstream_trouble import UpstreamTrouble
from batchgate.observability import metrics


class Withdrawn(Exception):
    """The request's batch was canceled while it waited."""


class Overdue(Exception):
    """The request's batch expired while it waited."""


@dataclass(frozen=True)
class FlowLimits:
    max_concurrency: int
    requests_per_minute: int | None = None
    input_tokens_per_minute: int | None = None
    output_tokens_per_minute: int | None = None


class _Waiter:
    __slots__ = ("admitted", "input_tokens")

    def __init__(self, admitted: "asyncio.Future[int]", input_tokens: int) -> None:
        self.admitted = admitted
        self.input_tokens = input_tokens


class FlowControl:
    """Admits requests to one route. `admit` returns a ticket that `finish` gives back.

    `trouble` tells the log of the route's failures (engine/retries.py reports them).
    """

    def __init__(
        self,
        limits: FlowLimits,
        clock: Callable[[], float] = time.monotonic,
        name: str = "",
        weights: Mapping[str, int] | None = None,
    ) -> None:
        self.limits = limits
        self.name = name
        self.concurrency = limits.max_concurrency
        self._limit_gauge = metrics.ROUTE_CONCURRENCY_LIMIT.labels(name)
        self._limit_gauge.set(self.concurrency)
        self._queued_gauge = metrics.REQUESTS_QUEUED.labels(name)
        self.trouble = UpstreamTrouble(name, limits.max_concurrency, clock)
        self.in_flight = 0
        self._clock = clock
        now = clock()
        self._requests = _bucket(limits.requests_per_minute, now)
        self._input_tokens = _bucket(limits.input_tokens_per_minute, now)
        self._output_tokens = _bucket(limits.output_tokens_per_minute, now)
        self._paused_until = 0.0
        # Overloads of requests started before the last cut say nothing new: one cut per epoch.
        self._epoch = 0
        self._successes = 0
        # Workspace → batch id → heap of (chunk_no, arrival, waiter). The order of both dicts
        # is the round-robin turn; the first workspace may start `_turn_left` more requests.
        self._waiting: dict[str, dict[str, list[tuple[int, int, _Waiter]]]] = {}
        self._weights = weights or {}
        self._turn_left = 0
        self._arrivals = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = 0.0

    @property
    def counts_input_tokens(self) -> bool:
        return self._input_tokens is not None

    @property
    def counts_output_tokens(self) -> bool:
        return self._output_tokens is not None

    async def admit(
        self, workspace: str, batch_id: str, chunk_no: int, input_tokens: int, expires_at: float
    ) -> int:
        """Waits for the request's turn; raises Withdrawn or Overdue if it never comes."""
        now = self._clock()
        if not self._waiting and self._wait(input_tokens, now) == 0:
            return self._start(input_tokens, now)
        waiter = _Waiter(asyncio.get_running_loop().create_future(), input_tokens)
        entry = (chunk_no, next(self._arrivals), waiter)
        batches = self._waiting.setdefault(workspace, {})
        heapq.heappush(batches.setdefault(batch_id, []), entry)
        self._queued_gauge.inc()
        self._pump()
        try:
            async with asyncio.timeout(expires_at - time.time()):
                return await waiter.admitted
        except TimeoutError:
            self._give_back(waiter)
            raise Overdue from None
        except BaseException:
            self._give_back(waiter)
            raise
        finally:
            self._queued_gauge.dec()

    def finish(self, ticket: int, *, output_tokens: int = 0, succeeded: bool = False) -> None:
        """The request has come back; `succeeded` counts towards raising the concurrency.

        Only successes of requests sent since the last cut count: the others say nothing about
        whether the upstream copes with the new limit.
        """
        self.in_flight -= 1
        if self._output_tokens is not None and output_tokens:
            self._output_tokens.spend(output_tokens, self._clock())
        if succeeded and ticket == self._epoch and self.concurrency < self.limits.max_concurrency:
            self._successes += 1
            if self._successes >= self.concurrency:
                self.concurrency += 1
                self._successes = 0
                self._limit_gauge.set(self.concurrency)
        self._pump()

    def overloaded(self, ticket: int, pause: float) -> None:
        """The upstream said it is overloaded: halve the concurrency and pause the route."""
        if ticket == self._epoch:
            self.concurrency = max(1, self.concurrency // 2)
            self._epoch += 1
            self._successes = 0
            self._limit_gauge.set(self.concurrency)
        self._paused_until = max(self._paused_until, self._clock() + pause)

    def withdraw(self, batch_id: str) -> None:
        """Ends the wait of every request of a canceled batch."""
        for workspace, batches in list(self._waiting.items()):
            for _, _, waiter in batches.pop(batch_id, ()):
                if not waiter.admitted.done():
                    waiter.admitted.set_exception(Withdrawn())
            if not batches:
                self._end_turn(workspace)
        self._pump()

    def _wait(self, input_tokens: int, now: float) -> float:
        """Seconds until a request may start, 0 if now, infinity until one finishes."""
        if self.in_flight >= self.concurrency:
            return float("inf")
        wait = self._paused_until - now
        if self._requests is not None:
            wait = max(wait, self._requests.wait(1, now))
        if self._input_tokens is not None:
            wait = max(wait, self._input_tokens.wait(input_tokens, now))
        if self._output_tokens is not None:
            wait = max(wait, self._output_tokens.wait(0, now))
        return max(wait, 0.0)

    def _start(self, input_tokens: int, now: float) -> int:
        self.in_flight += 1
        if self._requests is not None:
            self._requests.spend(1, now)
        if self._input_tokens is not None:
            self._input_tokens.spend(input_tokens, now)
        return self._epoch

    def _pump(self) -> None:
        """Admits waiting requests, in turns across workspaces and their batches, while the
        limits allow."""
        now = self._clock()
        while self._waiting:
            workspace, batches = next(iter(self._waiting.items()))
            batch_id, queue = next(iter(batches.items()))
            waiter = queue[0][2]
            if waiter.admitted.done():
                heapq.heappop(queue)
                if not queue:
                    del batches[batch_id]
                    if not batches:
                        self._end_turn(workspace)
                continue
            wait = self._wait(waiter.input_tokens, now)
            if wait == float("inf"):
                return
            if wait > 0:
                self._wake_in(wait, now)
                return
            heapq.heappop(queue)
            # The batch goes to the back of its workspace's turn, the workspace to the back of
            # all once it has started as many as its weight.
            del batches[batch_id]
            if queue:
                batches[batch_id] = queue
            if self._turn_left == 0:
                self._turn_left = self._weights.get(workspace, 1)
            self._turn_left -= 1
            if self._turn_left == 0 or not batches:
                self._end_turn(workspace)
            waiter.admitted.set_result(self._start(waiter.input_tokens, now))

    def _end_turn(self, workspace: str) -> None:
        """The workspace goes to the back of the turn, or leaves it with nothing waiting."""
        if workspace == next(iter(self._waiting)):
            self._turn_left = 0
        batches = self._waiting.pop(workspace)
        if batches:
            self._waiting[workspace] = batches

    def _wake_in(self, delay: float, now: float) -> None:
        due = now + delay
        if self._timer is not None:
            if self._timer_due <= due:
                return
            self._timer.cancel()
        self._timer_due = due
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._pump()

    def _give_back(self, waiter: _Waiter) -> None:
        """A waiter leaves: if it was admitted meanwhile, its place goes to the next one."""
        admitted = waiter.admitted
        if admitted.done() and not admitted.cancelled() and admitted.exception() is None:
            self.finish(admitted.result())
        else:
            admitted.cancel()


def _bucket(per_minute: int | None, now: float) -> TokenBucket | None:
    return None if per_minute is None else TokenBucket(per_minute, now)
