"""Schema versions on SQLite: a file upgrades itself as a store opens it.

One process serves a SQLite file, so the embedded default needs no extra command: opening the
store brings the file to this release's version. Before it changes a file that holds data, it
copies it next to itself with SQLite's online backup (`batchgate.db.before-v3`: the file as it
was before version 3), and it applies each version in one transaction, so a version that fails
leaves the file as it was. A new file gets `schema.sqlite.sql` in one go, and no copy.

Releases before numbered versions recorded none: they ran versions 1 and 2 (written with IF NOT
EXISTS) at every start. A file of theirs is recognised by its tables, adopted by running those
once more and checked to have exactly their schema; a file that does not is refused, untouched.
"""

import contextlib
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from batchgate.storage.migrations import (
    Migration,
    SchemaNotReady,
    SchemaStatus,
    available_migrations,
    current_schema,
    known_versions,
    newer_schema_problem,
)

log = logging.getLogger("batchgate.storage")
# The last version that releases without numbered versions ran at every start.
LAST_UNRECORDED_VERSION = 2
MIGRATIONS_TABLE = (
    "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))"
)


def _tables(connection: sqlite3.Connection) -> set[str]:
    rows = connection.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")
    return {name for (name,) in rows}


def applied_versions(connection: sqlite3.Connection) -> tuple[int, ...]:
    """The versions recorded in the file; empty when it records none (new, or unrecorded)."""
    if "schema_migrations" not in _tables(connection):
        return ()
    rows = connection.execute("SELECT version FROM schema_migrations ORDER BY version")
    return tuple(version for (version,) in rows)


def schema_status(connection: sqlite3.Connection) -> SchemaStatus:
    return SchemaStatus(applied_versions(connection), known_versions("sqlite"))


def file_schema_status(path: str) -> SchemaStatus:
    """The status of the file at `path`, read without changing anything, or creating it."""
    if not Path(path).exists():
        return SchemaStatus((), known_versions("sqlite"))
    uri = f"{Path(path).resolve().as_uri()}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
        return schema_status(connection)


def upgrade(connection: sqlite3.Connection, path: str) -> list[int]:
    """Brings the file of `connection` (at `path`) to this release's schema; returns the
    versions applied. Raises SchemaNotReady, the file left as it was, for a file a newer
    batchgate wrote, an unrecorded file whose schema is no release's, or a version that fails."""
    where = f"the SQLite database {path}"
    status = schema_status(connection)
    problem = newer_schema_problem(status, where)
    if problem is not None:
        raise SchemaNotReady(problem)
    if not status.pending:
        return []
    if not _tables(connection):
        return _create(connection)
    backup = _back_up(connection, path, status.pending[0])
    log.info(
        "upgrading the schema of %s to version %d; its copy from before is %s",
        where,
        status.known[-1],
        backup,
        extra={"backup": backup},
    )
    applied = [] if status.applied else _adopt_unrecorded(connection, where)
    for migration in available_migrations("sqlite"):
        if migration.version in status.pending and migration.version not in applied:
            try:
                if _apply(connection, migration):
                    applied.append(migration.version)
            except sqlite3.Error as error:
                raise SchemaNotReady(
                    f"Upgrading {where} failed at version {migration.version}"
                    f" ({migration.name}): {error}. That version was rolled back"
                    f" (versions applied: {applied or 'none'}); the file as it was before the"
                    f" upgrade is {backup}."
                ) from error
    return applied


def _create(connection: sqlite3.Connection) -> list[int]:
    """A new file: this release's whole schema, and every version recorded, in one go."""
    migrations = available_migrations("sqlite")
    with _transaction(connection):
        if _tables(connection):
            return []  # another process created the schema since the status was read
        connection.execute(MIGRATIONS_TABLE)
        _run_script(connection, current_schema("sqlite"))
        for migration in migrations:
            _record(connection, migration)
    return [migration.version for migration in migrations]


def _apply(connection: sqlite3.Connection, migration: Migration) -> bool:
    """Applies one version in one transaction; False when another process already had."""
    with _transaction(connection):
        if migration.version in applied_versions(connection):
            return False
        _run_script(connection, migration.sql)
        _record(connection, migration)
    return True


def _adopt_unrecorded(connection: sqlite3.Connection, where: str) -> list[int]:
    """Versions 1 and 2 on a file of a release that recorded no version, in one transaction:
    what that release ran at every start, checked to leave exactly their schema."""
    adopted = [m for m in available_migrations("sqlite") if m.version <= LAST_UNRECORDED_VERSION]
    expected = catalog(schema_of_versions(adopted))
    not_ours = (
        f"{where} records no schema version and its tables are not those of a batchgate"
        " release this one can upgrade: it was left untouched"
    )
    with _transaction(connection):
        if applied_versions(connection):
            return []  # another process adopted the file since the status was read
        connection.execute(MIGRATIONS_TABLE)
        try:
            for migration in adopted:
                _run_script(connection, migration.sql)
                _record(connection, migration)
        except sqlite3.Error as error:
            raise SchemaNotReady(f"{not_ours} ({error}).") from error
        if catalog(connection) != expected:
            raise SchemaNotReady(f"{not_ours}.")
    return [migration.version for migration in adopted]


def _back_up(connection: sqlite3.Connection, path: str, first_pending: int) -> str:
    """Copies the file, committed WAL content included, while it stays open for writing."""
    backup = f"{path}.before-v{first_pending}"
    copy = sqlite3.connect(backup)
    try:
        connection.backup(copy)
    finally:
        copy.close()
    return backup


def schema_of_versions(migrations: list[Migration]) -> sqlite3.Connection:
    """An in-memory database with `migrations` applied (and the table that records them)."""
    connection = sqlite3.connect(":memory:", isolation_level=None)
    connection.execute(MIGRATIONS_TABLE)
    for migration in migrations:
        _run_script(connection, migration.sql)
    return connection


def _record(connection: sqlite3.Connection, migration: Migration) -> None:
    connection.execute(
        "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
        (migration.version, migration.name),
    )


@contextlib.contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any error (DDL is transactional in SQLite)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _run_script(connection: sqlite3.Connection, script: str) -> None:
    # executescript would commit the open transaction first: statements one by one instead.
    for statement in _statements(script):
        connection.execute(statement)


def _statements(script: str) -> Iterator[str]:
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""
    if any(line.strip() and not line.strip().startswith("--") for line in pending.splitlines()):
        raise ValueError(f"an incomplete SQL statement ends a migration: {pending!r}")


def catalog(connection: sqlite3.Connection) -> dict[str, Any]:
    """The schema as data: each table's columns (name, type, not null, default, key position),
    whether it has rowids, and each index's columns, uniqueness and condition. Equal catalogs
    are the same schema, however the statements that made them were written."""
    tables: dict[str, Any] = {}
    for (table,) in connection.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        " ORDER BY name"
    ).fetchall():
        columns = [tuple(row[1:6]) for row in connection.execute(f"PRAGMA table_xinfo({table!r})")]
        indexes = {}
        for _, name, unique, origin, partial in connection.execute(
            f"PRAGMA index_list({table!r})"
        ).fetchall():
            keys = [
                (row[2], row[3])  # column name, descending
                for row in connection.execute(f"PRAGMA index_xinfo({name!r})")
                if row[5]  # key columns, not the row's id appended to each entry
            ]
            condition = None
            if partial:
                sql = connection.execute(
                    "SELECT sql FROM sqlite_schema WHERE name = ?", (name,)
                ).fetchone()[0]
                condition = " ".join(sql.split()).split(" WHERE ", 1)[1]
            # Indexes SQLite makes for keys and UNIQUE are named by position: name them by role.
            label = name if origin == "c" else f"{origin}:{','.join(k for k, _ in keys)}"
            indexes[label] = {"keys": keys, "unique": bool(unique), "where": condition}
        tables[table] = {
            "columns": columns,
            "rowid": _has_rowid(connection, table),
            "indexes": indexes,
        }
    return tables


def _has_rowid(connection: sqlite3.Connection, table: str) -> bool:
    """Whether the table has rowids: a WITHOUT ROWID table has no `rowid` to select."""
    try:
        connection.execute(f"SELECT rowid FROM {table!r} LIMIT 0")
    except sqlite3.OperationalError:
        return False
    return True
