"""Databases at a given schema version, and catalogs to compare schemas, on both stores."""

import sqlite3
from pathlib import Path
from typing import Any

import psycopg

from batchgate.storage.migrations import available_migrations
from batchgate.storage.migrations.sqlite import MIGRATIONS_TABLE


def sqlite_file_at_version(path: Path, version: int) -> None:
    """A SQLite file made by applying versions 1 to `version`, each recorded, as an older
    release with numbered versions left it."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA page_size=32768")
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(MIGRATIONS_TABLE)
        for migration in available_migrations("sqlite")[:version]:
            connection.executescript(migration.sql)
            connection.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                (migration.version, migration.name),
            )
    finally:
        connection.close()


def postgres_database_at_version(url: str, version: int) -> None:
    """The same on an empty PostgreSQL database (`batchgate migrate` of an older release)."""
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for migration in available_migrations("postgres")[:version]:
            db.execute(migration.sql.encode())
            db.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )


def postgres_catalog(url: str) -> dict[str, Any]:
    """Tables with their columns in order (type, nullability, default, collation, compression),
    storage options, constraints and indexes: equal catalogs are the same schema."""
    with psycopg.connect(url) as db:

        def rows(query: str) -> list[tuple[Any, ...]]:
            return db.execute(query).fetchall()

        return {
            "columns": rows(
                "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod),"
                " a.attnotnull, pg_get_expr(d.adbin, d.adrelid), co.collname, a.attcompression"
                " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
                " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
                " LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <>"
                "  (SELECT typcollation FROM pg_type WHERE oid = a.atttypid)"
                " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'"
                " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY c.relname, a.attnum"
            ),
            "tables": rows(
                "SELECT relname, reloptions FROM pg_class"
                " WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY relname"
            ),
            "constraints": rows(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
                " FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
            ),
            "indexes": rows(
                "SELECT tablename, indexname, indexdef FROM pg_indexes"
                " WHERE schemaname = 'public' ORDER BY indexname"
            ),
        }
