"""Numbered schema versions on both stores: every path to this release's schema ends at the same
schema, and a version that fails leaves the database as it was."""

import contextlib
import sqlite3
from pathlib import Path

import psycopg
import pytest

from batchgate.storage import migrations
from batchgate.storage.migrations import SchemaNotReady, available_migrations, known_versions
from batchgate.storage.migrations.postgres import migrate
from batchgate.storage.migrations.sqlite import catalog, schema_of_versions
from batchgate.storage.sqlite import SQLiteStore
from postgres_databases import Databases
from storage.builders import OWNER, create, run_everything
from storage.schema_versions import (
    postgres_catalog,
    postgres_database_at_version,
    sqlite_file_at_version,
)

SHIPPED = known_versions("sqlite")
# Each version the runner upgrades from: a database at version k, for every older k.
OLDER = range(1, len(SHIPPED))


def test_both_stores_ship_the_same_versions_numbered_from_one() -> None:
    def names(store: migrations.StoreKind) -> list[tuple[int, str]]:
        return [(m.version, m.name) for m in available_migrations(store)]

    assert names("sqlite") == names("postgres")
    assert tuple(range(1, len(SHIPPED) + 1)) == SHIPPED


def sqlite_catalog(path: Path) -> dict[str, object]:
    with sqlite3.connect(path) as connection:
        return catalog(connection)


def fresh_sqlite_catalog(directory: Path) -> dict[str, object]:
    SQLiteStore(str(directory / "fresh.db")).close()
    return sqlite_catalog(directory / "fresh.db")


def test_sqlite_every_version_applied_in_order_is_the_fresh_schema(tmp_path: Path) -> None:
    applied = catalog(schema_of_versions(available_migrations("sqlite")))
    assert applied == fresh_sqlite_catalog(tmp_path)


@pytest.mark.parametrize("start", OLDER)
def test_sqlite_upgrading_from_each_older_version_ends_at_the_fresh_schema(
    tmp_path: Path, start: int
) -> None:
    path = tmp_path / "old.db"
    sqlite_file_at_version(path, start)
    store = SQLiteStore(str(path))
    store.close()
    assert store.upgraded == list(SHIPPED[start:])
    assert sqlite_catalog(path) == fresh_sqlite_catalog(tmp_path)
    assert Path(f"{path}.before-v{start + 1}").exists()


def test_postgres_every_version_applied_in_order_is_the_fresh_schema(
    databases: Databases,
) -> None:
    fresh, stepwise = databases.create(), databases.create()
    assert migrate(fresh) == list(SHIPPED)
    postgres_database_at_version(stepwise, len(SHIPPED))
    assert postgres_catalog(stepwise) == postgres_catalog(fresh)


@pytest.mark.parametrize("start", OLDER)
def test_postgres_upgrading_from_each_older_version_ends_at_the_fresh_schema(
    databases: Databases, start: int
) -> None:
    fresh, old = databases.create(), databases.create()
    migrate(fresh)
    postgres_database_at_version(old, start)
    assert migrate(old) == list(SHIPPED[start:])
    assert postgres_catalog(old) == postgres_catalog(fresh)


def add_broken_next_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """This release's files plus a next version, on both stores, that fails half way: its first
    statements work, a later one does not."""
    shipped = Path(migrations.__file__).parent
    folder = tmp_path / "migrations"
    folder.mkdir()
    for file in shipped.glob("*.sql"):
        (folder / file.name).write_text(file.read_text())
    version = len(SHIPPED) + 1
    for store in ("sqlite", "postgres"):
        (folder / f"{version:04d}_broken.{store}.sql").write_text(
            "CREATE TABLE half_done (id integer);\n"
            "ALTER TABLE batches ADD COLUMN later integer;\n"
            "SELECT no_such_function();\n"
        )
    monkeypatch.setattr(migrations, "files", lambda package: folder)
    return version


def test_sqlite_a_version_that_fails_half_way_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "batchgate.db"
    store = SQLiteStore(str(path))
    create(store, "msgbatch_kept", sizes=(3,))
    run_everything(store)
    store.close()
    before = sqlite_catalog(path)
    with sqlite3.connect(path) as db:
        rows_before = db.execute("SELECT * FROM batches").fetchall()
    version = add_broken_next_version(tmp_path, monkeypatch)

    with pytest.raises(SchemaNotReady, match=rf"failed at version {version} \(broken\)"):
        SQLiteStore(str(path))

    assert sqlite_catalog(path) == before
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT * FROM batches").fetchall() == rows_before
        assert max(v for (v,) in db.execute("SELECT version FROM schema_migrations")) == version - 1
    backup = Path(f"{path}.before-v{version}")
    with sqlite3.connect(backup) as copy:
        assert copy.execute("SELECT * FROM batches").fetchall() == rows_before


def test_postgres_a_version_that_fails_half_way_leaves_the_database_as_it_was(
    databases: Databases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = databases.create()
    migrate(url)
    before = postgres_catalog(url)
    version = add_broken_next_version(tmp_path, monkeypatch)

    with pytest.raises(SchemaNotReady, match=rf"failed at version {version} \(broken\)"):
        migrate(url)

    assert postgres_catalog(url) == before
    with psycopg.connect(url) as db:
        assert db.execute("SELECT max(version) FROM schema_migrations").fetchone() == (version - 1,)


def test_sqlite_a_file_a_newer_batchgate_wrote_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "batchgate.db"
    store = SQLiteStore(str(path))
    create(store, "msgbatch_kept")
    store.close()
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')")
    content = path.read_bytes()

    with pytest.raises(SchemaNotReady, match="written by a newer batchgate"):
        SQLiteStore(str(path))

    assert path.read_bytes() == content
    assert not list(tmp_path.glob("*.before-*"))


def test_sqlite_an_unrecorded_file_that_is_no_release_of_ours_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE batches (id TEXT PRIMARY KEY, colour TEXT)")
    with pytest.raises(SchemaNotReady, match="not those of a batchgate release"):
        SQLiteStore(str(path))
    with sqlite3.connect(path) as db:
        assert [name for (name,) in db.execute("SELECT name FROM sqlite_schema")] == [
            "batches",
            "sqlite_autoindex_batches_1",
        ]


def test_a_store_on_an_upgraded_file_reads_its_batches(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    sqlite_file_at_version(path, 1)
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO batches (id, owner, status, total, processing, created_at, expires_at)"
            " VALUES ('msgbatch_old', ?, 'in_progress', 0, 0, 1, 2)",
            (OWNER,),
        )
    store = SQLiteStore(str(path))
    try:
        batch = store.get_batch(OWNER, "msgbatch_old")
        assert batch is not None and batch.status == "in_progress"
    finally:
        store.close()
