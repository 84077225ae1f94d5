"""Stores under test: a fresh SQLite file, and databases on the real PostgreSQL server.

The server is BATCHGATE_TEST_POSTGRES_URL (an admin URL; default: the local server, user
postgres). Each test session creates uniquely named databases and drops them at the end.
"""

from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from batchgate.storage.base import Store
from batchgate.storage.migrations.postgres import migrate
from batchgate.storage.postgres import TABLES, PostgresStore
from batchgate.storage.sqlite import SQLiteStore
from postgres_databases import Databases


@pytest.fixture(scope="session")
def migrated_url(databases: Databases) -> str:
    """One migrated database shared by the session; the `store` fixture empties it per test."""
    url = databases.create()
    migrate(url)
    return url


@pytest.fixture
def empty_database_url(databases: Databases) -> str:
    """A brand-new database with no schema at all."""
    return databases.create()


@pytest.fixture
def postgres_store(migrated_url: str) -> Iterator[PostgresStore]:
    with psycopg.connect(migrated_url, autocommit=True) as db:
        db.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, TABLES))))
    store = PostgresStore(migrated_url, pool_size=8)
    yield store
    store.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(str(tmp_path / "store.db"))
    yield store
    store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> Store:
    """Each contract test runs once on each store."""
    fixture: Store = request.getfixturevalue(f"{request.param}_store")
    return fixture


@pytest.fixture
def postgres_store_factory(
    migrated_url: str, postgres_store: PostgresStore
) -> Iterator[Callable[[], PostgresStore]]:
    """More stores on postgres_store's database: other processes, as far as they can tell."""
    opened: list[PostgresStore] = []

    def open_another() -> PostgresStore:
        opened.append(PostgresStore(migrated_url, pool_size=4))
        return opened[-1]

    yield open_another
    for store in opened:
        store.close()
