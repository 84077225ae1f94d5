"""PostgreSQL's schema versions on the real server: migrate, check at start, refuse."""

import threading

import psycopg
import pytest

from batchgate.api.keys import key_hash
from batchgate.storage.migrations import SchemaNotReady, known_versions
from batchgate.storage.migrations.postgres import migrate, schema_status
from batchgate.storage.postgres import PostgresStore
from storage.builders import create
from storage.schema_versions import postgres_database_at_version

SHIPPED = known_versions("postgres")


def test_migrate_creates_the_schema_once(empty_database_url: str) -> None:
    assert schema_status(empty_database_url).pending == SHIPPED
    assert migrate(empty_database_url) == list(SHIPPED)
    assert migrate(empty_database_url) == []
    status = schema_status(empty_database_url)
    assert (status.applied, status.is_current) == (SHIPPED, True)
    PostgresStore(empty_database_url).close()


def test_processes_migrating_at_once_apply_each_version_once(empty_database_url: str) -> None:
    applied: list[int] = []
    failures: list[Exception] = []
    start = threading.Barrier(4)

    def run() -> None:
        start.wait()
        try:
            applied.extend(migrate(empty_database_url))
        except Exception as error:
            failures.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert applied == list(SHIPPED)


def test_store_refuses_a_database_without_the_schema(empty_database_url: str) -> None:
    with pytest.raises(SchemaNotReady, match=r"no batchgate schema yet: run `batchgate migrate`"):
        PostgresStore(empty_database_url)


def test_a_database_of_version_1_is_refused_until_migrated_and_keeps_its_batches(
    empty_database_url: str,
) -> None:
    # Before workspaces (0002), a batch's owner was the SHA-256 of the env key that created it.
    postgres_database_at_version(empty_database_url, 1)
    owner = key_hash("team-a-key")
    with psycopg.connect(empty_database_url) as db:
        db.execute(
            "INSERT INTO batches (id, owner, status, total, processing, created_at, expires_at)"
            " VALUES ('msgbatch_1', %s, 'in_progress', 2, 2, 1, 2)",
            (owner,),
        )

    with pytest.raises(SchemaNotReady, match=r"missing versions \[2.* run `batchgate migrate`"):
        PostgresStore(empty_database_url)
    assert migrate(empty_database_url) == list(SHIPPED[1:])
    after = PostgresStore(empty_database_url)
    try:
        batch = after.get_batch(owner, "msgbatch_1")
        assert batch is not None and batch.total == 2
        assert after.api_keys() == []
        create(after, "msgbatch_2")
    finally:
        after.close()


def test_a_schema_from_a_newer_batchgate_is_refused(empty_database_url: str) -> None:
    migrate(empty_database_url)
    with psycopg.connect(empty_database_url) as db:
        db.execute("INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')")
    with pytest.raises(SchemaNotReady, match="written by a newer batchgate"):
        PostgresStore(empty_database_url)
    with pytest.raises(SchemaNotReady, match="written by a newer batchgate"):
        migrate(empty_database_url)
