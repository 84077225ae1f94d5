"""`batchgate migrate` and `--status` on both stores, and `serve` refusing a newer schema."""

import contextlib
import sqlite3
from pathlib import Path

from batchgate.storage.migrations import known_versions
from conftest import run_cli
from postgres_databases import Databases
from storage.schema_versions import postgres_database_at_version, sqlite_file_at_version

LATEST = known_versions("sqlite")[-1]


def test_migrate_upgrades_a_sqlite_file_ahead_of_serve_and_status_tells(tmp_path: Path) -> None:
    path = tmp_path / "batchgate.db"
    url = f"sqlite:///{path}"
    missing = run_cli("migrate", "--status", database_url=url)
    assert missing.returncode == 0 and "no batchgate schema" in missing.stdout
    assert not path.exists(), "--status must not create the file"

    sqlite_file_at_version(path, 1)
    older = run_cli("migrate", "--status", database_url=url)
    assert "version 1 " in older.stdout and f"pending: {list(range(2, LATEST + 1))}" in older.stdout

    migrated = run_cli("migrate", database_url=url)
    assert migrated.returncode == 0
    assert f"Applied migrations {list(range(2, LATEST + 1))}" in migrated.stdout
    assert Path(f"{path}.before-v2").exists()
    current = run_cli("migrate", "--status", database_url=url)
    assert f"version {LATEST} " in current.stdout and "pending" not in current.stdout
    assert "up to date" in run_cli("migrate", database_url=url).stdout


def test_serve_refuses_a_sqlite_file_a_newer_batchgate_wrote(tmp_path: Path) -> None:
    path = tmp_path / "batchgate.db"
    url = f"sqlite:///{path}"
    assert run_cli("migrate", database_url=url).returncode == 0
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')")
    content = path.read_bytes()

    refused = run_cli("serve", "--port", "1", database_url=url)

    assert refused.returncode == 2
    assert "written by a newer batchgate" in refused.stderr
    assert "version 9999" in refused.stderr
    assert path.read_bytes() == content
    status = run_cli("migrate", "--status", database_url=url)
    assert "written by a newer batchgate: versions [9999]" in status.stdout


def test_migrate_status_on_postgresql_changes_nothing(databases: Databases) -> None:
    url = databases.create()
    postgres_database_at_version(url, 1)
    status = run_cli("migrate", "--status", database_url=url)
    assert status.returncode == 0
    assert "version 1 " in status.stdout and "pending: [2" in status.stdout
    again = run_cli("migrate", "--status", database_url=url)
    assert again.stdout == status.stdout
