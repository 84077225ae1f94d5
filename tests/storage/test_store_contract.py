"""The storage contract: every test runs on SQLite and on PostgreSQL (see conftest.py)."""

import dataclasses
import logging
import random
import sqlite3
import threading

import orjson
import psycopg
import pytest

from batchgate.service.batches import USER_CANCEL
from batchgate.storage.base import (
    ApiKeyRow,
    BatchOptions,
    BatchRow,
    LeasedChunk,
    Store,
    StoredChunk,
    StoreUnavailable,
    WrongState,
)
from batchgate.storage.sqlite import SQLiteStore
from storage.builders import (
    DAY,
    LEASE,
    NOW,
    OWNER,
    create,
    finish,
    keys,
    part,
    result_lines,
    run_everything,
)


def test_create_then_get_only_for_its_owner(store: Store) -> None:
    created = create(store, "msgbatch_1", sizes=(2, 3))
    assert created == BatchRow(
        "msgbatch_1", "in_progress", 5, 5, 0, 0, 0, 0, NOW, NOW + DAY, None, None, None
    )
    assert store.get_batch(OWNER, "msgbatch_1") == created
    assert store.get_batch("mallory", "msgbatch_1") is None
    assert store.get_batch(OWNER, "msgbatch_2") is None


def test_list_pages_newest_first_both_ways(store: Store) -> None:
    # Byte order, which is creation order for real ids, whatever the database's collation.
    ids = ["msgbatch_0001", "msgbatch_000A", "msgbatch_000Z", "msgbatch_000a", "msgbatch_000z"]
    for batch_id in ids:
        create(store, batch_id)
    create(store, "msgbatch_000b", owner="bob")
    newest = ids[::-1]

    def page(limit: int, after: str | None, before: str | None) -> tuple[list[str], bool]:
        rows, more = store.list_batches(OWNER, limit, after, before)
        return [row.id for row in rows], more

    assert page(2, None, None) == (newest[:2], True)
    assert page(2, newest[1], None) == (newest[2:4], True)
    assert page(2, newest[3], None) == (newest[4:], False)
    assert page(2, None, newest[4]) == (newest[2:4], True)
    assert page(2, None, newest[2]) == (newest[:2], False)
    assert page(10, None, None) == (newest, False)
    # A cursor need not exist (deleted, or another owner's): ids alone order the walk.
    assert page(10, "msgbatch_000b", None) == (newest[1:], False)
    assert [row.id for row in store.list_batches("bob", 10, None, None)[0]] == ["msgbatch_000b"]
    assert store.list_batches("carol", 10, None, None) == ([], False)


def test_cancel_then_cancel_again_then_refused_once_ended(store: Store) -> None:
    create(store, "msgbatch_1")
    canceling = store.cancel_batch(OWNER, "msgbatch_1", NOW + 5, USER_CANCEL)
    assert canceling is not None
    assert (canceling.status, canceling.cancel_initiated_at) == ("canceling", NOW + 5)
    assert store.cancel_batch(OWNER, "msgbatch_1", NOW + 6, USER_CANCEL) == canceling
    assert store.cancel_batch("mallory", "msgbatch_1", NOW, USER_CANCEL) is None
    assert store.cancel_batch(OWNER, "msgbatch_2", NOW, USER_CANCEL) is None
    assert store.canceling_batch_ids() == {"msgbatch_1"}

    run_everything(store, outcome="canceled")
    ended = store.get_batch(OWNER, "msgbatch_1")
    assert ended is not None
    assert (ended.status, ended.canceled, ended.processing) == ("ended", 2, 0)
    assert store.canceling_batch_ids() == set()
    with pytest.raises(WrongState, match="already ended"):
        store.cancel_batch(OWNER, "msgbatch_1", NOW + 7, USER_CANCEL)


def test_delete_only_ended_batches_of_their_owner(store: Store) -> None:
    create(store, "msgbatch_1")
    with pytest.raises(WrongState, match="in_progress"):
        store.delete_batch(OWNER, "msgbatch_1")
    store.cancel_batch(OWNER, "msgbatch_1", NOW, USER_CANCEL)
    with pytest.raises(WrongState, match="canceling"):
        store.delete_batch(OWNER, "msgbatch_1")
    run_everything(store)
    assert list(store.iter_results("msgbatch_1"))

    assert store.delete_batch("mallory", "msgbatch_1") is False
    assert store.delete_batch(OWNER, "msgbatch_1") is True
    assert store.get_batch(OWNER, "msgbatch_1") is None
    assert list(store.iter_results("msgbatch_1")) == []
    assert list(store.iter_request_chunks("msgbatch_1")) == []
    assert store.delete_batch(OWNER, "msgbatch_1") is False


def test_leases_take_low_chunk_numbers_across_batches_first(store: Store) -> None:
    create(store, "msgbatch_a", sizes=(2, 2, 2), expires_at=NOW + 100)
    create(store, "msgbatch_b", sizes=(1, 1))

    first = store.lease_chunks("w1", 3, NOW, LEASE)
    assert keys(first) == [("msgbatch_a", 0), ("msgbatch_b", 0), ("msgbatch_a", 1)]
    assert first[0] == LeasedChunk(
        "msgbatch_a",
        OWNER,
        0,
        orjson.dumps(["msgbatch_a/0/0", "msgbatch_a/0/1"]),
        orjson.dumps([{"chunk": 0, "i": 0}, {"chunk": 0, "i": 1}]),
        "in_progress",
        NOW + 100,
        frozenset(),
        0,
    )
    assert keys(store.lease_chunks("w2", 10, NOW, LEASE)) == [("msgbatch_b", 1), ("msgbatch_a", 2)]
    assert store.lease_chunks("w3", 10, NOW, LEASE) == []


def test_workspaces_with_work_take_turns_before_priority(store: Store) -> None:
    urgent = BatchOptions(priority=5)
    create(store, "msgbatch_a1", sizes=(1, 1, 1), owner="workspace:a", options=urgent)
    create(store, "msgbatch_a2", sizes=(1,), owner="workspace:a", options=urgent)
    create(store, "msgbatch_b", sizes=(1, 1), owner="workspace:b")

    leased = store.lease_chunks("w", 2, NOW, LEASE)
    assert keys(leased) == [("msgbatch_a1", 0), ("msgbatch_b", 0)]
    assert [chunk.workspace for chunk in leased] == ["workspace:a", "workspace:b"]
    # One chunk of each workspace in turn, counting those leased already; within a workspace,
    # priority then chunk number.
    assert keys(store.lease_chunks("w", 1, NOW, LEASE)) == [("msgbatch_a2", 0)]
    assert keys(store.lease_chunks("w", 10, NOW, LEASE)) == [
        ("msgbatch_b", 1),
        ("msgbatch_a1", 1),
        ("msgbatch_a1", 2),
    ]


def test_canceled_and_expired_batches_jump_the_queue(store: Store) -> None:
    create(store, "msgbatch_a", sizes=(1, 1))
    create(store, "msgbatch_b", sizes=(1, 1))
    create(store, "msgbatch_c", sizes=(1, 1), expires_at=NOW + 10)

    store.cancel_batch(OWNER, "msgbatch_b", NOW, USER_CANCEL)
    canceled = store.lease_chunks("w", 2, NOW, LEASE)
    assert keys(canceled) == [("msgbatch_b", 0), ("msgbatch_b", 1)]
    assert {chunk.batch_status for chunk in canceled} == {"canceling"}

    assert store.expedite_overdue(NOW + 9) == 0
    assert store.expedite_overdue(NOW + 10) == 2
    assert store.expedite_overdue(NOW + 11) == 0
    assert keys(store.lease_chunks("w", 3, NOW, LEASE)) == [
        ("msgbatch_c", 0),
        ("msgbatch_c", 1),
        ("msgbatch_a", 0),
    ]


def test_expired_lease_goes_to_another_worker_who_skips_done_requests(store: Store) -> None:
    create(store, "msgbatch_1", sizes=(4,))
    [chunk] = store.lease_chunks("w1", 10, NOW, LEASE)
    assert store.save_part("w1", part(chunk, 0, [0, 2]), NOW + 1)

    assert store.lease_chunks("w2", 10, NOW + LEASE - 1, LEASE) == []
    [taken] = store.lease_chunks("w2", 10, NOW + LEASE + 1, LEASE)
    assert (taken.done_indices, taken.next_part) == (frozenset({0, 2}), 1)

    # The first worker's late part is refused and leaves no trace.
    assert not store.save_part("w1", part(chunk, 1, [1, 3], done=True), NOW + LEASE + 2)
    batch = store.get_batch(OWNER, "msgbatch_1")
    assert batch is not None
    assert (batch.processing, batch.succeeded) == (2, 2)
    assert list(store.iter_results("msgbatch_1")) == [result_lines(chunk, [0, 2])]

    assert finish(store, "w2", taken, NOW + LEASE + 3)
    assert list(store.iter_results("msgbatch_1")) == [
        result_lines(chunk, [0, 2]),
        result_lines(chunk, [1, 3]),
    ]
    batch = store.get_batch(OWNER, "msgbatch_1")
    assert batch is not None
    assert (batch.status, batch.processing, batch.succeeded) == ("ended", 0, 4)


def test_renewed_leases_hold_and_renewals_only_touch_their_own(store: Store) -> None:
    create(store, "msgbatch_1")
    [chunk] = store.lease_chunks("w1", 10, NOW, LEASE)
    store.renew_leases("w1", keys([chunk]), NOW + 20, LEASE)
    assert store.lease_chunks("w2", 10, NOW + LEASE + 1, LEASE) == []
    assert len(store.lease_chunks("w2", 10, NOW + 51, LEASE)) == 1  # w2 holds it until NOW + 81
    store.renew_leases("w1", keys([chunk]), NOW + 60, LEASE)
    assert len(store.lease_chunks("w3", 10, NOW + 85, LEASE)) == 1
    assert not finish(store, "w1", chunk, NOW + 86)


def test_released_leases_are_taken_at_once_and_keep_their_done_requests(store: Store) -> None:
    create(store, "msgbatch_1", sizes=(4, 4))
    [first, second] = store.lease_chunks("leaving", 10, NOW, LEASE)
    assert store.save_part("leaving", part(first, 0, [0, 2]), NOW + 1)
    assert store.lease_chunks("other", 10, NOW + 1, LEASE) == []

    assert store.release_leases("leaving") == 2
    assert store.release_leases("leaving") == 0
    taken = store.lease_chunks("next", 10, NOW + 2, LEASE)
    assert [(c.chunk_no, c.done_indices) for c in taken] == [
        (first.chunk_no, frozenset({0, 2})),
        (second.chunk_no, frozenset()),
    ]
    assert not store.save_part("leaving", part(first, 1, [1]), NOW + 3)


def test_one_failed_chunk_can_be_released_alone(store: Store) -> None:
    create(store, "msgbatch_1", sizes=(2, 2))
    first, second = store.lease_chunks("w", 10, NOW, LEASE)
    assert store.release_leases("w", (first.batch_id, first.chunk_no)) == 1
    assert [c.chunk_no for c in store.lease_chunks("other", 10, NOW + 1, LEASE)] == [first.chunk_no]
    assert store.save_part("w", part(second, 0, [0, 1], done=True), NOW + 2)


def test_the_part_that_ends_a_batch_logs_it_once(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    create(store, "msgbatch_1", sizes=(2,))
    [chunk] = store.lease_chunks("w", 10, NOW, LEASE)
    with caplog.at_level(logging.INFO, logger="batchgate.storage"):
        assert store.save_part("w", part(chunk, 0, [0]), NOW + 1)
        assert caplog.records == []
        assert store.save_part("w", part(chunk, 1, [1], done=True), NOW + 2)
    assert [(r.getMessage(), r.batch_id) for r in caplog.records] == [("batch ended", "msgbatch_1")]


def test_ping_answers_while_the_database_is_there(store: Store) -> None:
    store.ping()


def test_counts_move_with_each_part_and_the_last_one_ends_the_batch(store: Store) -> None:
    create(store, "msgbatch_1", sizes=(3, 2))
    first, second = store.lease_chunks("w", 10, NOW, LEASE)

    def counts() -> tuple[object, ...]:
        batch = store.get_batch(OWNER, "msgbatch_1")
        assert batch is not None
        return (
            batch.status,
            batch.processing,
            batch.succeeded,
            batch.errored,
            batch.canceled,
            batch.expired,
            batch.ended_at,
        )

    assert store.save_part("w", part(first, 0, [0]), NOW + 1)
    assert counts() == ("in_progress", 4, 1, 0, 0, 0, None)
    assert store.save_part("w", part(first, 1, [2, 1], "errored"), NOW + 2)
    assert counts() == ("in_progress", 2, 1, 2, 0, 0, None)
    assert store.save_part("w", part(first, 2, [], done=True), NOW + 3)
    assert counts() == ("in_progress", 2, 1, 2, 0, 0, None)
    assert store.save_part("w", part(second, 0, [0], "canceled"), NOW + 4)
    assert store.save_part("w", part(second, 1, [1], "expired", done=True), NOW + 5)
    assert counts() == ("ended", 0, 1, 2, 1, 1, NOW + 5)
    # Done chunks are never leased again, however long ago their lease began.
    assert store.lease_chunks("w2", 10, NOW + 10 * LEASE, LEASE) == []


def test_results_come_back_complete_in_chunk_and_part_order(store: Store) -> None:
    create(store, "msgbatch_1", sizes=(10, 10, 10))
    chunks = store.lease_chunks("w", 10, NOW, LEASE)
    parts = [
        part(chunk, number, [2 * number, 2 * number + 1], done=number == 4)
        for chunk in chunks
        for number in range(5)
    ]
    expected = [saved.lines for saved in parts]
    random.Random(7).shuffle(parts)
    # Part numbers order a chunk's parts, whatever order they were committed in.
    for saved in sorted(parts, key=lambda saved: saved.chunk_done):
        assert store.save_part("w", saved, NOW)

    assert list(store.iter_results("msgbatch_1")) == expected
    assert list(store.iter_request_chunks("msgbatch_1")) == [
        StoredChunk(chunk.custom_ids, chunk.params, b"".join(expected[5 * n : 5 * n + 5]))
        for n, chunk in enumerate(chunks)
    ]


def test_requests_come_back_with_the_results_so_far(store: Store) -> None:
    create(store, "msgbatch_1", sizes=(2, 1))
    first, second = store.lease_chunks("w", 10, NOW, LEASE)
    assert store.save_part("w", part(first, 0, [1]), NOW)
    assert list(store.iter_request_chunks("msgbatch_1")) == [
        StoredChunk(first.custom_ids, first.params, result_lines(first, [1])),
        StoredChunk(second.custom_ids, second.params, b""),
    ]


def test_archive_drops_results_of_old_ended_batches_only(store: Store) -> None:
    create(store, "msgbatch_1", created_at=NOW - 100)
    create(store, "msgbatch_2", created_at=NOW)
    run_everything(store)
    create(store, "msgbatch_3", created_at=NOW - 100)

    assert store.archive_older_than(NOW - 50, NOW + 1) == 1
    archived = store.get_batch(OWNER, "msgbatch_1")
    assert archived is not None
    assert (archived.status, archived.succeeded, archived.archived_at) == ("ended", 2, NOW + 1)
    assert list(store.iter_results("msgbatch_1")) == []
    assert list(store.iter_request_chunks("msgbatch_1")) == []
    assert len(list(store.iter_results("msgbatch_2"))) == 1
    assert len(list(store.iter_request_chunks("msgbatch_3"))) == 1
    assert store.archive_older_than(NOW - 50, NOW + 2) == 0


def test_announced_work_reaches_the_registered_callback(store: Store) -> None:
    woken = threading.Event()
    store.on_work_announced(woken.set)
    assert not woken.is_set()
    store.announce_work()
    assert woken.wait(2)


def test_embedded_start_up_frees_every_leased_chunk_then_none(sqlite_store: SQLiteStore) -> None:
    """Leases from before the store opened are a dead process's; later ones, its engines'."""
    create(sqlite_store, "msgbatch_1")
    assert len(sqlite_store.lease_chunks("gone", 10, NOW, LEASE)) == 1
    assert sqlite_store.recover_abandoned_chunks() == 1
    assert len(sqlite_store.lease_chunks("new", 10, NOW + 1, LEASE)) == 1
    assert sqlite_store.recover_abandoned_chunks() == 0
    assert sqlite_store.lease_chunks("other", 10, NOW + 2, LEASE) == []


def test_saving_a_committed_part_again_counts_nothing_twice(store: Store) -> None:
    """The retry of a commit whose answer was lost (the connection dropped after COMMIT)."""
    create(store, "msgbatch_1", sizes=(4, 2))
    first, second = store.lease_chunks("w", 10, NOW, LEASE)
    opening = part(first, 0, [0, 1])
    closing = part(first, 1, [2, 3], done=True)
    for saved in (opening, opening, closing, closing):
        assert store.save_part("w", saved, NOW + 1)
    assert store.save_part("w", part(second, 0, [0, 1]), NOW + 2)
    empty_closing = part(second, 1, [], done=True)
    assert store.save_part("w", empty_closing, NOW + 3)
    assert store.save_part("w", empty_closing, NOW + 4)

    batch = store.get_batch(OWNER, "msgbatch_1")
    assert batch is not None
    assert (batch.status, batch.processing, batch.succeeded) == ("ended", 0, 6)
    assert b"".join(store.iter_results("msgbatch_1")).count(b"\n") == 6


def test_a_part_number_taken_by_the_next_holder_is_not_mistaken_for_a_retry(store: Store) -> None:
    create(store, "msgbatch_1", sizes=(4,))
    [lapsed] = store.lease_chunks("slow", 10, NOW, LEASE)
    [taken] = store.lease_chunks("next", 10, NOW + LEASE + 1, LEASE)
    assert store.save_part("next", part(taken, 0, [0, 1]), NOW + LEASE + 2)
    assert not store.save_part("slow", part(lapsed, 0, [2, 3]), NOW + LEASE + 3)


def test_a_stale_part_of_a_chunk_that_came_back_to_its_worker_is_refused(store: Store) -> None:
    """The chunk ran elsewhere meanwhile and was leased again by its first worker, whose old run
    still holds old part numbers: one taken by another part must not pass for a retry."""
    create(store, "msgbatch_1", sizes=(4,))
    [stale] = store.lease_chunks("w", 10, NOW, LEASE)
    [taken] = store.lease_chunks("other", 10, NOW + LEASE + 1, LEASE)
    assert store.save_part("other", part(taken, 0, [0, 1]), NOW + LEASE + 2)
    assert store.release_leases("other") == 1
    [again] = store.lease_chunks("w", 10, NOW + LEASE + 3, LEASE)
    assert again.done_indices == {0, 1}

    assert not store.save_part("w", part(stale, 0, [2, 3]), NOW + LEASE + 4)

    assert store.save_part("w", part(again, again.next_part, [2, 3], done=True), NOW + LEASE + 5)
    batch = store.get_batch(OWNER, "msgbatch_1")
    assert batch is not None and (batch.status, batch.succeeded) == ("ended", 4)


def test_a_violated_constraint_is_not_reported_as_an_unavailable_database(store: Store) -> None:
    create(store, "msgbatch_1")
    with pytest.raises(Exception) as raised:
        create(store, "msgbatch_1")
    assert not isinstance(raised.value, StoreUnavailable)


def test_a_store_on_the_schema_it_opened_reports_no_schema_problem(store: Store) -> None:
    assert store.schema_problem() is None


# --- API keys ----------------------------------------------------------------------------------


def api_key(key_id: str, workspace: str, created_at: float = NOW) -> ApiKeyRow:
    return ApiKeyRow(key_id, workspace, f"bgk_{key_id}", f"hash-of-{key_id}", created_at, None)


def test_api_keys_are_listed_oldest_first_with_their_workspace(store: Store) -> None:
    assert store.api_keys() == []
    store.create_api_key(api_key("key_2", "red", created_at=NOW + 1))
    store.create_api_key(api_key("key_1", "blue"))
    assert store.api_keys() == [api_key("key_1", "blue"), api_key("key_2", "red", NOW + 1)]


def test_api_key_ids_and_prefixes_are_unique(store: Store) -> None:
    store.create_api_key(api_key("key_1", "red"))
    for duplicate in (
        api_key("key_1", "blue"),
        dataclasses.replace(api_key("key_2", "blue"), prefix="bgk_key_1"),
    ):
        with pytest.raises((sqlite3.IntegrityError, psycopg.IntegrityError)):
            store.create_api_key(duplicate)
    assert [key.id for key in store.api_keys()] == ["key_1"]


def test_revoking_a_key_keeps_the_first_time(store: Store) -> None:
    store.create_api_key(api_key("key_1", "red"))
    store.create_api_key(api_key("key_2", "red"))
    revoked = store.revoke_api_key("key_1", NOW + 5)
    assert revoked == dataclasses.replace(api_key("key_1", "red"), revoked_at=NOW + 5)
    assert store.revoke_api_key("key_1", NOW + 9) == revoked
    assert store.revoke_api_key("key_unknown", NOW) is None
    assert store.api_keys() == [revoked, api_key("key_2", "red")]
