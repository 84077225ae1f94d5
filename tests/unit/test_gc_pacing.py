"""The engine's garbage collection by the clock (engine/gc_pacing.py)."""

import gc
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
    monkeypatch.setattr(gc_pacing, "YOUNG_COLLECTION_SECONDS", 0.01)
    monkeypatch.setattr(gc_pacing, "FULL_COLLECTION_SECONDS", 0.1)
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


def test_the_youngest_generation_is_collected_by_the_clock_not_by_its_count(
    collections: list[int],
) -> None:
    pacer = CollectionPacer()
    pacer.start()
    time.sleep(0.2)
    pacer.stop()
    # Far fewer objects than the threshold were made meanwhile.
    assert gc.get_threshold()[0] == gc_pacing.GC_YOUNGEST_THRESHOLD
    assert collections.count(0) >= 5
    passes = len(collections)
    time.sleep(0.05)
    assert len(collections) == passes, "a pass after stop"


def test_cycles_that_reached_the_oldest_generation_are_freed_by_the_full_collection(
    collections: list[int],
) -> None:
    pacer = CollectionPacer()
    pacer.start()  # freezes what lives by then: the node comes after
    try:
        node = Node()
        gone = weakref.ref(node)
        gc.collect(1)  # the node survives into the oldest generation
        del node
        deadline = time.monotonic() + 5
        while gone() is not None and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        pacer.stop()
    assert gone() is None
    assert 2 in collections
