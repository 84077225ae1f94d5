"""The versioned PostgreSQL schema: numbered SQL files next to this module, applied in order.

`migrate` applies the files a database lacks, each in its own transaction together with its row
in `schema_migrations`. Every PostgresStore checks the recorded versions before it starts, so no
process runs against a schema it was not written for.
"""

import re
from dataclasses import dataclass
from importlib.resources import files

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow

# Any fixed key will do: processes migrating the same database at once take turns on it.
ADVISORY_LOCK_KEY = 0x6261746368676174  # "batchgat"
# A server that never answers (a dropped route, a firewall) fails a connect within this long.
CONNECT_TIMEOUT_SECONDS = 5
FILE_NAME = re.compile(r"(\d{4})_(\w+)\.sql")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    applied: tuple[int, ...]  # empty when the database has no schema_migrations table
    known: tuple[int, ...]  # the versions this batchgate ships

    @property
    def pending(self) -> tuple[int, ...]:
        return tuple(version for version in self.known if version not in self.applied)

    @property
    def unknown(self) -> tuple[int, ...]:
        """Versions applied by a newer batchgate."""
        return tuple(version for version in self.applied if version not in self.known)

    @property
    def is_current(self) -> bool:
        return not self.pending and not self.unknown


class SchemaNotReady(Exception):
    """The database's schema is missing, older or newer than this batchgate's."""


def available_migrations() -> list[Migration]:
    found = []
    for entry in files(__name__).iterdir():
        match = FILE_NAME.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda migration: migration.version)


def describe(database_url: str) -> str:
    """Names the database without the password a URL may carry."""
    params = conninfo_to_dict(database_url)
    host = params.get("host") or "localhost"
    return f"database {params.get('dbname', '')!r} on {host}:{params.get('port') or 5432}"


def applied_versions(connection: psycopg.Connection[TupleRow]) -> tuple[int, ...]:
    """The versions recorded in the database; empty when it has no schema_migrations table."""
    if connection.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,):
        return ()
    rows = connection.execute("SELECT version FROM schema_migrations ORDER BY version")
    return tuple(row[0] for row in rows)


def schema_status(database_url: str) -> SchemaStatus:
    """The versions applied to the database and those this batchgate ships."""
    known = tuple(migration.version for migration in available_migrations())
    with psycopg.connect(
        database_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
    ) as connection:
        return SchemaStatus(applied_versions(connection), known)


def schema_problem(status: SchemaStatus, where: str) -> str | None:
    """What keeps the schema from being exactly this batchgate's, and what to do; None if it is."""
    if status.unknown:
        return (
            f"The batchgate schema in {where} has versions {list(status.unknown)} that this"
            f" batchgate does not know (it ships up to {status.known[-1]}): upgrade batchgate."
        )
    if not status.applied:
        return f"The {where} has no batchgate schema yet: run `batchgate migrate` first."
    if status.pending:
        return (
            f"The batchgate schema in {where} is out of date (missing versions"
            f" {list(status.pending)}): run `batchgate migrate`."
        )
    return None


def require_current_schema(database_url: str) -> None:
    """Raises SchemaNotReady, saying what to do, unless the schema is exactly this version."""
    problem = schema_problem(schema_status(database_url), describe(database_url))
    if problem is not None:
        raise SchemaNotReady(problem)


def migrate(database_url: str) -> list[int]:
    """Creates or upgrades the schema; returns the versions it applied (empty: up to date)."""
    with psycopg.connect(
        database_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
    ) as connection:
        # Held until this connection closes, which also releases it if the process dies.
        connection.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
            " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        migrations = available_migrations()
        status = SchemaStatus(applied_versions(connection), tuple(m.version for m in migrations))
        if status.unknown:
            raise SchemaNotReady(schema_problem(status, describe(database_url)))
        applied = []
        for migration in migrations:
            if migration.version in status.applied:
                continue
            with connection.transaction():
                # No parameters: psycopg sends the file as one simple query, all its statements.
                connection.execute(migration.sql.encode())
                connection.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
            applied.append(migration.version)
        return applied
