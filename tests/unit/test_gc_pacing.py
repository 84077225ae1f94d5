"""The engine's garbage collection: freezing by the clock, full collections by growth
(engine/gc_pacing.py)."""

import gc
import os
import subprocess
import sys
import time
import weakref
from collections.abc import Iterator

import pytest

from batchgate.engine import gc_pacing
from batchgate.engine.gc_pacing import CollectionPacer


class Node:
    def __init__(self) -> None:
        self.myself = self


@pytest.fixture
def collections(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The generations collected meanwhile; the collector's settings restored after."""
    monkeypatch.setattr(gc_pacing, "FREEZE_SECONDS", 0.01)
    monkeypatch.setattr(gc_pacing, "COUNT_SECONDS", 0.1)
    thresholds = gc.get_threshold()
    collected: list[int] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            collected.append(info["generation"])

    gc.callbacks.append(record)
    try:
        yield collected
    finally:
        gc.callbacks.remove(record)
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def _walked(objects: list[list[int]]) -> int:
    """How many of `objects` are in a generation that collections walk: not frozen. (Counting
    the frozen objects instead would count those of other tests that die meanwhile.)"""
    walked = {id(tracked) for tracked in gc.get_objects()}
    return sum(id(each) in walked for each in objects)


def test_what_lives_is_frozen_by_the_clock_where_no_collection_walks_it(
    collections: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gc_pacing, "COUNT_SECONDS", 100)
    pacer = CollectionPacer()
    pacer.start()
    try:
        alive = [[index] for index in range(1000)]
        deadline = time.monotonic() + 5
        while _walked(alive) and time.monotonic() < deadline:
            time.sleep(0.01)
        walked_while_running = _walked(alive)
    finally:
        pacer.stop()
    assert walked_while_running == 0
    assert gc.get_threshold()[0] == gc_pacing.GC_YOUNGEST_THRESHOLD
    # Once stopped, the collector has everything back.
    assert gc.get_freeze_count() == 0


def test_cycles_among_frozen_objects_are_freed_by_the_full_collection(
    collections: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gc_pacing, "GROWTH_RATIO", 0)
    monkeypatch.setattr(gc_pacing, "MIN_GROWTH", 1)
    pacer = CollectionPacer()
    pacer.start()  # freezes what lives by then: the node comes after
    try:
        frozen = gc.get_freeze_count()
        node = Node()
        gone = weakref.ref(node)
        deadline = time.monotonic() + 5
        while gc.get_freeze_count() <= frozen and time.monotonic() < deadline:
            time.sleep(0.001)
        del node  # frozen by now: only the full collection can free it
        growth = [[index] for index in range(1000)]  # which comes as the process grows
        deadline = time.monotonic() + 5
        while gone() is not None and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        pacer.stop()
    assert gone() is None and len(growth) == 1000
    assert 2 in collections


def test_a_quiet_process_is_never_walked_whole(collections: list[int]) -> None:
    """Little grown since the last full collection: none, however many times it is counted."""
    pacer = CollectionPacer()
    pacer.start()
    try:
        time.sleep(0.5)  # five periods of the fixture's full collections
    finally:
        pacer.stop()
    assert 2 not in collections


def test_growth_is_collected_once_it_reaches_the_target_and_not_before(
    collections: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests in flight hold objects that live: below the target they are never walked; past
    it, whatever holds them, a full collection comes at the next count."""
    monkeypatch.setattr(gc_pacing, "GROWTH_RATIO", 0)
    monkeypatch.setattr(gc_pacing, "MIN_GROWTH", 200_000)
    pacer = CollectionPacer()
    pacer.start()
    try:
        blocks = sys.getallocatedblocks()
        in_flight = [[index] for index in range(1000, 21_000)]
        grown_below = sys.getallocatedblocks() - blocks
        time.sleep(0.3)  # thirty freezes, three counts
        walked_below_the_target = 2 in collections
        more = [[index] for index in range(1000, 101_000)]
        grown_past = sys.getallocatedblocks() - blocks
        deadline = time.monotonic() + 5
        while 2 not in collections and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        pacer.stop()
    assert grown_below < gc_pacing.MIN_GROWTH < grown_past
    assert not walked_below_the_target
    assert 2 in collections and len(in_flight) + len(more) == 120_000


def test_a_full_collection_that_did_not_run_is_tried_again(
    collections: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`gc.collect()` returns at once, walking nothing, while another thread's collection is
    under way: the growth is still there to collect at the next count."""
    monkeypatch.setattr(gc_pacing, "GROWTH_RATIO", 0)
    monkeypatch.setattr(gc_pacing, "MIN_GROWTH", 1000)
    collect = gc.collect
    calls: list[int] = []

    def first_one_busy(generation: int = 2) -> int:
        calls.append(generation)
        return 0 if len(calls) == 1 else collect(generation)

    monkeypatch.setattr(gc, "collect", first_one_busy)
    pacer = CollectionPacer()
    pacer.start()
    try:
        growth = [[index] for index in range(1000, 5000)]
        deadline = time.monotonic() + 5
        while 2 not in collections and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        pacer.stop()
    assert len(calls) >= 2 and len(growth) == 4000
    assert 2 in collections


def test_without_pymalloc_the_collector_keeps_its_own_pacing() -> None:
    """PYTHONMALLOC=malloc leaves nothing to measure the heap by: nothing is frozen, so the
    collector's own collections still find every cycle."""
    script = (
        "import gc, time\n"
        "from batchgate.engine.gc_pacing import CollectionPacer\n"
        "thresholds = gc.get_threshold()\n"
        "pacer = CollectionPacer()\n"
        "pacer.start()\n"
        "alive = [[i] for i in range(1000)]\n"
        "time.sleep(0.2)\n"
        "print(gc.get_freeze_count(), gc.get_threshold() == thresholds)\n"
        "pacer.stop()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONMALLOC": "malloc"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.split() == ["0", "True"]
