"""Schema versions on PostgreSQL: `batchgate migrate`, and the check every process makes at start.

Many processes share one database, so none upgrades it by itself: `migrate` applies the
versions a database lacks (a new database gets `schema.postgres.sql` in one go), each in its own
transaction together with its row in `schema_migrations`, and every PostgresStore checks the
recorded versions before it starts.
"""

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow

from batchgate.storage.migrations import (
    SchemaNotReady,
    SchemaStatus,
    available_migrations,
    current_schema,
    known_versions,
    newer_schema_problem,
)

# Any fixed key will do: processes migrating the same database at once take turns on it.
ADVISORY_LOCK_KEY = 0x6261746368676174  # "batchgat"
# A server that never answers (a dropped route, a firewall) fails a connect within this long.
CONNECT_TIMEOUT_SECONDS = 5


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


def _connect(database_url: str) -> psycopg.Connection[TupleRow]:
    return psycopg.connect(database_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS)


def schema_status(database_url: str) -> SchemaStatus:
    """The versions applied to the database and those this batchgate ships."""
    with _connect(database_url) as connection:
        return SchemaStatus(applied_versions(connection), known_versions("postgres"))


def schema_problem(status: SchemaStatus, where: str) -> str | None:
    """What keeps the schema from being exactly this batchgate's, and what to do; None if it is."""
    newer = newer_schema_problem(status, where)
    if newer is not None:
        return newer
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
    with _connect(database_url) as connection:
        # Held until this connection closes, which also releases it if the process dies.
        connection.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        migrations = available_migrations("postgres")
        status = SchemaStatus(applied_versions(connection), known_versions("postgres"))
        if status.unknown:
            raise SchemaNotReady(schema_problem(status, describe(database_url)))
        if not status.applied:
            with connection.transaction():
                _create_migrations_table(connection)
                # No parameters: psycopg sends the file as one simple query, all its statements.
                connection.execute(current_schema("postgres").encode())
                for migration in migrations:
                    _record(connection, migration.version, migration.name)
            return list(status.known)
        applied: list[int] = []
        for migration in migrations:
            if migration.version in status.applied:
                continue
            try:
                with connection.transaction():
                    connection.execute(migration.sql.encode())
                    _record(connection, migration.version, migration.name)
            except psycopg.OperationalError:
                raise  # the connection, not the version: nothing of it was committed
            except psycopg.Error as error:
                raise SchemaNotReady(
                    f"Upgrading {describe(database_url)} failed at version {migration.version}"
                    f" ({migration.name}): {error}. That version was rolled back (versions"
                    f" applied: {applied or 'none'})."
                ) from error
            applied.append(migration.version)
        return applied


def _create_migrations_table(connection: psycopg.Connection[TupleRow]) -> None:
    connection.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
        " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
    )


def _record(connection: psycopg.Connection[TupleRow], version: int, name: str) -> None:
    connection.execute(
        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name)
    )
