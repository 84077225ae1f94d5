"""Versioned schema on the real server: migrate, check, refuse."""

import threading

import psycopg
import pytest

from batchgate.api.keys import key_hash
from batchgate.storage import migrations
from batchgate.storage.migrations import (
    Migration,
    SchemaNotReady,
    migrate,
    schema_status,
)
from batchgate.storage.postgres import PostgresStore
from storage.builders import create

SHIPPED = tuple(migration.version for migration in migrations.available_migrations())


def test_shipped_versions_are_numbered_once_each_from_one() -> None:
    assert tuple(range(1, len(SHIPPED) + 1)) == SHIPPED


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


def test_store_refuses_an_older_schema_until_migrated(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrate(empty_database_url)
    shipped = migrations.available_migrations()
    newer = Migration(len(shipped) + 1, "marker", "CREATE TABLE migration_marker (id integer);")
    monkeypatch.setattr(migrations, "available_migrations", lambda: [*shipped, newer])

    with pytest.raises(SchemaNotReady, match=r"out of date .* run `batchgate migrate`"):
        PostgresStore(empty_database_url)
    assert migrate(empty_database_url) == [newer.version]
    PostgresStore(empty_database_url).close()
    with psycopg.connect(empty_database_url) as db:
        assert db.execute("SELECT to_regclass('migration_marker')").fetchone() == (
            "migration_marker",
        )


def test_a_database_of_version_1_upgrades_with_its_batches_still_their_owners(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before workspaces (0002), a batch's owner was the SHA-256 of the env key that created it.
    shipped = migrations.available_migrations()
    monkeypatch.setattr(migrations, "available_migrations", lambda: shipped[:1])
    assert migrate(empty_database_url) == [1]
    owner = key_hash("team-a-key")
    before = PostgresStore(empty_database_url)
    create(before, "msgbatch_1", owner=owner)
    before.close()
    monkeypatch.undo()

    with pytest.raises(SchemaNotReady, match=r"missing versions \[2"):
        PostgresStore(empty_database_url)
    assert migrate(empty_database_url) == list(SHIPPED[1:])
    after = PostgresStore(empty_database_url)
    try:
        batch = after.get_batch(owner, "msgbatch_1")
        assert batch is not None and batch.total == 2
        assert after.api_keys() == []
    finally:
        after.close()


def test_a_schema_from_a_newer_batchgate_is_refused(empty_database_url: str) -> None:
    migrate(empty_database_url)
    with psycopg.connect(empty_database_url) as db:
        db.execute("INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')")
    with pytest.raises(SchemaNotReady, match="upgrade batchgate"):
        PostgresStore(empty_database_url)
    with pytest.raises(SchemaNotReady, match="upgrade batchgate"):
        migrate(empty_database_url)
