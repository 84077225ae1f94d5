"""Numbered schema versions: one sequence for both stores, each store's SQL in its own files.

Version N is one change of the schema, written once per store side by side in this folder:
`NNNN_name.postgres.sql` and `NNNN_name.sqlite.sql`. `schema.<store>.sql` is the whole schema of
this release, which a new database gets in one go; a test proves that applying every version to
an empty database yields exactly it. Each database records the versions it has in
`schema_migrations`, so that no process runs on a schema it was not written for:

- SQLite (migrations/sqlite.py) upgrades itself as a store opens the file, after copying it
  next to itself; PostgreSQL (migrations/postgres.py), shared by many processes, is upgraded by
  `batchgate migrate`, and a process refuses to start on an older schema.
- A database that a newer batchgate has upgraded is refused, never altered.

A released version is never edited: a change is always a new version (docs/upgrading.md).
"""

import re
from dataclasses import dataclass
from importlib.resources import files
from typing import Literal

StoreKind = Literal["postgres", "sqlite"]
FILE_NAME = re.compile(r"(\d{4})_(\w+)\.(postgres|sqlite)\.sql")


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

    def describe(self) -> str:
        """The version a database is at, as `batchgate migrate --status` prints it."""
        at = f"version {self.applied[-1]}" if self.applied else "no batchgate schema"
        lines = [f"{at} (this batchgate ships versions 1 to {self.known[-1]})"]
        if self.pending:
            lines.append(f"pending: {list(self.pending)}")
        if self.unknown:
            lines.append(f"written by a newer batchgate: versions {list(self.unknown)}")
        return "; ".join(lines)


class SchemaNotReady(Exception):
    """The database's schema is missing, older or newer than this batchgate's."""


def available_migrations(store: StoreKind) -> list[Migration]:
    """The versions this batchgate ships for `store`, in order."""
    found = []
    for entry in files(__name__).iterdir():
        match = FILE_NAME.fullmatch(entry.name)
        if match and match[3] == store:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda migration: migration.version)


def known_versions(store: StoreKind) -> tuple[int, ...]:
    return tuple(migration.version for migration in available_migrations(store))


def current_schema(store: StoreKind) -> str:
    """The whole schema of this release (`schema.<store>.sql`)."""
    return files(__name__).joinpath(f"schema.{store}.sql").read_text(encoding="utf-8")


def newer_schema_problem(status: SchemaStatus, where: str) -> str | None:
    """Why this batchgate must not open a database a newer one has upgraded; None if it may."""
    if not status.unknown:
        return None
    return (
        f"The batchgate schema in {where} is at version {status.applied[-1]}, written by a newer"
        f" batchgate (this one knows versions up to {status.known[-1]}): it is left untouched."
        " Run the newer batchgate, or restore the copy taken before that upgrade"
        " (docs/upgrading.md)."
    )
