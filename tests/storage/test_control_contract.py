"""The control extensions' storage contract (labels, usage, priority, idempotency keys,
cancel reasons): every test runs on SQLite and on PostgreSQL (see conftest.py)."""

import dataclasses
import sqlite3
from pathlib import Path

import psycopg

from batchgate.storage import postgres, sqlite
from batchgate.storage.base import (
    BatchFilter,
    BatchOptions,
    IdempotencyRecord,
    ResultCounts,
    Store,
    TokenUsage,
)
from batchgate.storage.batch_queries import list_page_query
from batchgate.storage.sqlite import SQLiteStore
from storage.builders import DAY, LEASE, NOW, OWNER, create, keys, part

USAGE_A = TokenUsage(2, 10, 20, 3, 4)
USAGE_B = TokenUsage(1, 5, 7, 0, 0)


def test_labels_filter_pages_with_the_status(store: Store) -> None:
    for number in range(6):
        labels = {"team": "a" if number % 2 else "b", "env": "prod" if number < 4 else "dev"}
        create(store, f"msgbatch_{number}", options=BatchOptions(metadata=labels))
    create(store, "msgbatch_x", owner="bob", options=BatchOptions(metadata={"team": "a"}))

    def page(only: BatchFilter, limit: int = 10, after: str | None = None) -> list[str]:
        return [row.id for row in store.list_batches(OWNER, limit, after, None, only)[0]]

    team_a = BatchFilter((("team", "a"),))
    assert page(team_a) == ["msgbatch_5", "msgbatch_3", "msgbatch_1"]
    assert page(team_a, 2) == ["msgbatch_5", "msgbatch_3"]
    assert page(team_a, 2, "msgbatch_3") == ["msgbatch_1"]
    rows, more = store.list_batches(OWNER, 1, None, "msgbatch_1", team_a)
    assert [row.id for row in rows] == ["msgbatch_3"] and more
    assert page(BatchFilter((("team", "a"), ("env", "prod")))) == ["msgbatch_3", "msgbatch_1"]
    assert page(BatchFilter((("team", "c"),))) == []
    assert store.get_batch(OWNER, "msgbatch_5").metadata == {"team": "a", "env": "dev"}  # type: ignore[union-attr]

    store.cancel_batch(OWNER, "msgbatch_3", NOW, {"type": "user"})
    assert page(BatchFilter(status="canceling")) == ["msgbatch_3"]
    assert page(BatchFilter(team_a.labels, "in_progress")) == ["msgbatch_5", "msgbatch_1"]


def test_a_custom_id_finds_the_batches_holding_it(store: Store) -> None:
    # builders.create names each request batch/chunk/index.
    create(store, "msgbatch_1", sizes=(2, 3))
    create(store, "msgbatch_2", options=BatchOptions(metadata={"team": "a"}))
    create(store, "msgbatch_3")
    create(store, "msgbatch_4", owner="bob")

    def page(only: BatchFilter, after: str | None = None) -> list[str]:
        return [row.id for row in store.list_batches(OWNER, 10, after, None, only)[0]]

    assert page(BatchFilter(custom_id="msgbatch_1/1/2")) == ["msgbatch_1"]
    # The whole custom_id, not a part of one.
    assert page(BatchFilter(custom_id="msgbatch_1/1/")) == []
    assert page(BatchFilter(custom_id="msgbatch_1/1")) == []
    assert page(BatchFilter((("team", "a"),), custom_id="msgbatch_2/0/1")) == ["msgbatch_2"]
    assert page(BatchFilter((("team", "a"),), custom_id="msgbatch_3/0/1")) == []
    assert page(BatchFilter(status="ended", custom_id="msgbatch_3/0/1")) == []
    assert page(BatchFilter(custom_id="msgbatch_4/0/0")) == []  # bob's


def test_usage_adds_up_per_part_and_model_once(store: Store) -> None:
    create(store, "msgbatch_1", sizes=(4,))
    [chunk] = store.lease_chunks("w", 1, NOW, LEASE)
    first = dataclasses.replace(
        part(chunk, 0, [0, 1, 2]), usage=(("model-a", USAGE_A), ("model-b", USAGE_B))
    )
    assert store.save_part("w", first, NOW)
    assert store.save_part("w", first, NOW)  # a retry after a lost answer adds nothing
    second = dataclasses.replace(part(chunk, 1, [3], done=True), usage=(("model-a", USAGE_B),))
    assert store.save_part("w", second, NOW)
    batch = store.get_batch(OWNER, "msgbatch_1")
    assert batch is not None
    assert batch.usage == (("model-a", USAGE_A + USAGE_B), ("model-b", USAGE_B))
    assert batch.total_usage == USAGE_A + USAGE_B + USAGE_B
    assert store.find_batch("msgbatch_1") == batch

    tokens, outcomes = store.usage_report(OWNER, NOW - 1, NOW + 1)
    day = int(NOW // 86_400)
    assert [(row.day, row.model, row.usage) for row in tokens] == [
        (day, "model-a", USAGE_A + USAGE_B),
        (day, "model-b", USAGE_B),
    ]
    assert [(row.day, row.counts) for row in outcomes] == [(day, ResultCounts(succeeded=4))]
    assert store.usage_report(OWNER, NOW + 1, NOW + 2) == ([], [])
    assert store.usage_report("bob", NOW - 1, NOW + 1) == ([], [])

    assert store.delete_batch(OWNER, "msgbatch_1")
    assert store.usage_report(OWNER, NOW - 1, NOW + 1) == ([], [])


def test_higher_priority_chunks_are_leased_first_urgent_ones_before_all(store: Store) -> None:
    create(store, "msgbatch_a", sizes=(1, 1))
    create(store, "msgbatch_b", sizes=(1, 1), options=BatchOptions(priority=5))
    create(store, "msgbatch_c", sizes=(1,), options=BatchOptions(priority=-1))
    create(store, "msgbatch_d", sizes=(1,))
    store.cancel_batch(OWNER, "msgbatch_d", NOW, {"type": "user"})
    assert keys(store.lease_chunks("w", 10, NOW, LEASE)) == [
        ("msgbatch_d", 0),
        ("msgbatch_b", 0),
        ("msgbatch_b", 1),
        ("msgbatch_a", 0),
        ("msgbatch_a", 1),
        ("msgbatch_c", 0),
    ]


def test_the_abort_policy_travels_with_the_lease(store: Store) -> None:
    policy = {"errored_share": 0.2, "min_results": 100}
    create(store, "msgbatch_1", options=BatchOptions(abort_policy=policy))
    [chunk] = store.lease_chunks("w", 1, NOW, LEASE)
    assert chunk.abort_policy == policy
    reason = {"type": "abort_policy", "message": "errored share 1.00 > 0.20 after 100 results"}
    canceled = store.cancel_batch(None, "msgbatch_1", NOW + 1, reason)
    assert canceled is not None and canceled.cancel_reason == reason
    assert canceled.abort_policy == policy
    # A second cancel keeps the first reason.
    again = store.cancel_batch(OWNER, "msgbatch_1", NOW + 2, {"type": "user"})
    assert again is not None and again.cancel_reason == reason


def test_idempotency_keys_claimed_once_per_owner_until_they_expire(store: Store) -> None:
    def claim(owner: str, key: str, digest: str, now: float) -> IdempotencyRecord | None:
        return store.claim_idempotency_key(owner, key, digest, now, now - DAY, now - 600)

    assert claim(OWNER, "k", "d1", NOW) is None
    assert claim(OWNER, "k", "d1", NOW + 1) == IdempotencyRecord("d1", None)
    assert claim("bob", "k", "d2", NOW + 1) is None
    create(store, "msgbatch_1", options=BatchOptions(idempotency_key="k"))
    assert claim(OWNER, "k", "d9", NOW + 2) == IdempotencyRecord("d1", "msgbatch_1")
    # A claim without a batch is abandoned after 600 s; one with a batch lasts a day.
    assert claim("bob", "k", "d3", NOW + 602) is None
    assert claim(OWNER, "k", "d9", NOW + 602) == IdempotencyRecord("d1", "msgbatch_1")
    assert claim(OWNER, "k", "d9", NOW + DAY + 1) is None
    # A failed create gives its claim back; a stored one is never released.
    store.release_idempotency_key(OWNER, "k", "d9")
    assert claim(OWNER, "k", "d8", NOW + DAY + 2) is None
    assert store.forget_idempotency_keys(NOW + DAY + 3) == 2


def test_sqlite_label_and_status_filters_read_an_index(tmp_path: Path) -> None:
    SQLiteStore(str(tmp_path / "plan.db")).close()

    with sqlite3.connect(tmp_path / "plan.db") as db:
        for only in (
            BatchFilter((("team", "a"),)),
            BatchFilter((("team", "a"), ("env", "prod"))),
            BatchFilter(status="ended"),
        ):
            statement, parameters = list_page_query(
                OWNER, only, "msgbatch_z", False, 21, "?", sqlite.BLOB_CONTAINS, sqlite.USAGE_ARRAY
            )
            plan = " ".join(
                row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
            )
            assert "SCAN" not in plan, plan
            assert "TEMP B-TREE" not in plan, plan


def test_postgres_filters_stay_on_indexes_with_100_000_batches(
    postgres_store: Store, migrated_url: str
) -> None:
    with psycopg.connect(migrated_url, autocommit=True) as db:
        db.execute(
            "INSERT INTO batches (id, owner, status, total, processing, succeeded, created_at,"
            " expires_at) SELECT 'msgbatch_' || lpad(n::text, 8, '0'), 'owner' || (n % 10),"
            " CASE WHEN n % 3 = 0 THEN 'ended' ELSE 'in_progress' END, 1,"
            " CASE WHEN n % 3 = 0 THEN 0 ELSE 1 END, CASE WHEN n % 3 = 0 THEN 1 ELSE 0 END,"
            " n, n + 86400 FROM generate_series(1, 100000) AS n"
        )
        db.execute(
            "INSERT INTO batch_labels (owner, key, value, batch_id) SELECT 'owner' || (n % 10),"
            " 'team', 't' || (n % 7), 'msgbatch_' || lpad(n::text, 8, '0')"
            " FROM generate_series(1, 100000) AS n"
        )
        db.execute("ANALYZE batches, batch_labels")
        for only in (
            BatchFilter((("team", "t3"),)),
            BatchFilter((("team", "t3"),), "ended"),
            BatchFilter(status="ended"),
        ):
            statement, parameters = list_page_query(
                "owner3", only, None, False, 21, "%s", postgres.BLOB_CONTAINS, postgres.USAGE_ARRAY
            )
            plan = "\n".join(
                row[0] for row in db.execute(f"EXPLAIN {statement}".encode(), parameters).fetchall()
            )
            assert "Seq Scan" not in plan and "Sort" not in plan, plan
    rows, more = postgres_store.list_batches("owner3", 20, None, None, BatchFilter(status="ended"))
    assert len(rows) == 20 and more and all(row.status == "ended" for row in rows)
