"""Keeps the garbage collector's pauses short while thousands of requests are in flight.

A collection holds the GIL, so it pauses the whole process: in `serve`, the API too. Its cost is
the objects it walks. Requests in flight on a wide, slow upstream (a thousand at once, each for
seconds) hold about a hundred tracked objects each (the SDK's request, httpx's and aiohttp's
objects, the chain of coroutines awaiting them), and CPython 3.11 to 3.13 decides when to
collect the youngest generation by a count of allocations *minus deallocations*. While one
request ends for each that starts, that count hardly moves, but the youngest generation keeps
every new request's objects: when a collection finally came, it walked all of them (60 to 130
ms, each a retrieve's wait; docs/benchmarks.md, "Wide upstreams"). Collecting the youngest
generation by the clock instead kept each pause short but walked every request's objects once:
a tenth more CPU per request.

So every FREEZE_SECONDS, on a thread of its own, what is alive is moved into the permanent
generation (`gc.freeze()` relinks the generations' lists: it walks nothing), where no collection
walks it. What is frozen is still freed by reference counting as usual; only cycles among frozen
objects wait for a full collection, which unfreezes everything, collects, and freezes what is
left. That one walks the whole process (half a second at 1,024 requests in flight, a second at
4,096, on a slow 2-core machine), while the requests leave next to no cycles behind (under one
object a request, measured: docs/benchmarks.md). So it is paced as Go paces its collector
(GOGC=100), by the heap: it comes once the interpreter's allocated blocks have grown by as many
as the last one left (GROWTH_RATIO) and by MIN_GROWTH at least, so that thousands of requests in
flight are never a reason to walk them, an idle server is never walked, and a stream of cycles
(errored requests' tracebacks), which holds blocks too, is collected before it outgrows what is
alive.

The heap is measured by `sys.getallocatedblocks()`, every COUNT_SECONDS: it adds up the memory
pools' counts (0.3 ms for two million blocks). Counting the frozen objects instead walks their
list, which holds the GIL for about 100 ms at 4,096 requests in flight: every API request waits.
Without pymalloc (PYTHONMALLOC=malloc) there are no counts: the collector keeps its own pacing.

Every collection's pause is timed for `batchgate_gc_pause_seconds`.
"""

import gc
import sys
import threading
import time
from collections import deque
from typing import Any

from batchgate.observability import metrics

# The count that triggers a collection by itself: only bursts of allocations reach it between
# two freezes (a large create decoded on the API's thread).
GC_YOUNGEST_THRESHOLD = 100_000
FREEZE_SECONDS = 0.05
COUNT_SECONDS = 0.5
# A full collection once the allocated blocks grew by GROWTH_RATIO times what the last one left,
# and by MIN_GROWTH at least: about what 5,000 requests in flight hold (~470 blocks each).
GROWTH_RATIO = 1.0
MIN_GROWTH = 2_500_000


class CollectionPacer:
    """Freezes what is alive every FREEZE_SECONDS and collects everything once it has grown
    enough, from `start` until `stop`."""

    def __init__(self) -> None:
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="batchgate-gc", daemon=True)
        self._began = 0.0
        # (generation, seconds) of the collections not yet in the metric: a collection may
        # happen anywhere, even inside the metric's lock, so it is observed on the next pass.
        self._pauses: deque[tuple[int, float]] = deque()
        # Without pymalloc (PYTHONMALLOC=malloc), whose counts measure the heap, the collector
        # keeps its own pacing: its pauses are still timed.
        self._paced = sys.getallocatedblocks() > 0

    def start(self) -> None:
        for generation in range(3):
            # Exported from the start, at zero while that generation is never collected.
            metrics.GC_PAUSES.labels(str(generation))
        gc.callbacks.append(self._time)
        if self._paced:
            # What is alive by now (modules, the SDKs' hundreds of model classes) lives as long
            # as the process, and is walked only by the full collections.
            gc.freeze()
            gc.set_threshold(GC_YOUNGEST_THRESHOLD, *gc.get_threshold()[1:])
        self._thread.start()

    def stop(self) -> None:
        """Ends the passes once the one under way, if any, is done, and hands what is frozen
        back to the collector: a process that goes on without its engine (tests) keeps no
        cycles frozen."""
        self._stopped.set()
        self._thread.join()
        gc.unfreeze()
        gc.callbacks.remove(self._time)
        self._observe_pauses()

    def _time(self, phase: str, info: dict[str, Any]) -> None:
        # Collections never overlap: each holds the GIL from its start to its stop.
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self._pauses.append((info["generation"], time.perf_counter() - self._began))

    def _observe_pauses(self) -> None:
        while self._pauses:
            generation, seconds = self._pauses.popleft()
            metrics.GC_PAUSES.labels(str(generation)).observe(seconds)

    def _run(self) -> None:
        collect_at = _full_collection_target(sys.getallocatedblocks())
        next_count = time.monotonic() + COUNT_SECONDS
        while not self._stopped.wait(FREEZE_SECONDS):
            if self._paced:
                if time.monotonic() >= next_count:
                    next_count = time.monotonic() + COUNT_SECONDS
                    if sys.getallocatedblocks() >= collect_at:
                        full_collections = gc.get_stats()[2]["collections"]
                        gc.unfreeze()
                        gc.collect()
                        # A collection under way on another thread (its callbacks let go of
                        # the GIL) makes this one return at once, having walked nothing: then
                        # it is tried again at the next count.
                        if gc.get_stats()[2]["collections"] > full_collections:
                            collect_at = _full_collection_target(sys.getallocatedblocks())
                gc.freeze()
            self._observe_pauses()


def _full_collection_target(blocks: int) -> int:
    return blocks + max(int(blocks * GROWTH_RATIO), MIN_GROWTH)
