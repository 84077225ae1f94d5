"""Parts in commit order, followers woken as parts commit, and retries: on both stores."""

import random
import threading

import orjson
import pytest

from batchgate.storage.base import BatchRow, NewChunk, ResultCounts, RetryRow, Store, WrongState
from storage.builders import DAY, LEASE, NOW, OWNER, create, finish, part, run_everything


def test_parts_come_in_commit_order_after_any_position(store: Store) -> None:
    create(store, "msgbatch_1", sizes=(10, 10))
    create(store, "msgbatch_2", sizes=(10,))
    chunks = store.lease_chunks("w", 10, NOW, LEASE)
    parts = [
        part(chunk, number, [2 * number, 2 * number + 1]) for chunk in chunks for number in range(5)
    ]
    random.Random(3).shuffle(parts)
    assert store.last_part_position("msgbatch_1") == 0
    committed: list[tuple[int, bytes]] = []
    for saved in parts:
        assert store.save_part("w", saved, NOW)
        if saved.batch_id == "msgbatch_1":
            committed.append((store.last_part_position("msgbatch_1"), saved.lines))

    positions = [position for position, _ in committed]
    assert positions == sorted(set(positions)) and positions[0] > 0
    read = [(p.position, p.lines) for p in store.iter_parts_after("msgbatch_1", -1)]
    assert read == committed
    middle = positions[9]
    assert [p.lines for p in store.iter_parts_after("msgbatch_1", middle)] == [
        lines for _, lines in committed[10:]
    ]
    assert list(store.iter_parts_after("msgbatch_1", positions[-1])) == []


def test_followers_hear_of_each_batch_whose_parts_commit(store: Store) -> None:
    heard: list[str] = []
    woken = threading.Event()

    def on_parts(batch_id: str) -> None:
        heard.append(batch_id)
        woken.set()

    store.on_parts_committed(on_parts)
    create(store, "msgbatch_1")
    [chunk] = store.lease_chunks("w", 10, NOW, LEASE)
    assert store.save_part("w", part(chunk, 0, [0]), NOW)
    assert woken.wait(5)
    assert heard[-1] == "msgbatch_1"


def test_a_retry_is_recorded_with_its_child_once_per_parent(store: Store) -> None:
    create(store, "msgbatch_1")
    run_everything(store, outcome="errored")
    retried = ResultCounts(errored=2)
    child = create_child(store, "msgbatch_2", RetryRow("msgbatch_2", "msgbatch_1", NOW, retried))
    assert store.retries_of(["msgbatch_1"]) == [RetryRow("msgbatch_2", "msgbatch_1", NOW, retried)]
    assert store.retries_of(["msgbatch_2"]) == store.retries_of(["msgbatch_1"])
    # Every batch read carries its place in the chain, the batch the create returns included.
    assert (child.retry_of, child.retried_as) == ("msgbatch_1", None)
    parent = store.get_batch(OWNER, "msgbatch_1")
    assert parent is not None and (parent.retry_of, parent.retried_as) == (None, "msgbatch_2")
    assert store.get_batch(OWNER, "msgbatch_2") == child
    page, _ = store.list_batches(OWNER, 20, None, None)
    assert [(b.id, b.retry_of, b.retried_as) for b in page] == [
        ("msgbatch_2", "msgbatch_1", None),
        ("msgbatch_1", None, "msgbatch_2"),
    ]
    with pytest.raises(WrongState):
        create_child(store, "msgbatch_3", RetryRow("msgbatch_3", "msgbatch_1", NOW, retried))
    assert store.get_batch(OWNER, "msgbatch_3") is None

    # The parent cannot go while its child is there; the child can, and takes the link along.
    [chunk] = store.lease_chunks("w", 10, NOW, LEASE)
    assert finish(store, "w", chunk)
    with pytest.raises(WrongState, match="cascade=true"):
        store.delete_batch(OWNER, "msgbatch_1")
    assert store.delete_batch(OWNER, "msgbatch_2")
    assert store.retries_of(["msgbatch_1"]) == []
    parent = store.get_batch(OWNER, "msgbatch_1")
    assert parent is not None and parent.retried_as is None
    assert store.delete_batch(OWNER, "msgbatch_1")


def create_child(store: Store, batch_id: str, retry: RetryRow) -> BatchRow:
    chunk = NewChunk(1, orjson.dumps(["a"]), orjson.dumps([{}]))
    return store.create_batch(batch_id, OWNER, NOW, NOW + DAY, 1, [chunk], retry_of=retry)
