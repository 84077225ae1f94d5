"""`batchgate keys create|list|revoke` on SQLite and PostgreSQL: keys shown once, never stored."""

import json
import re
from pathlib import Path

import pytest

from batchgate.api.keys import key_hash
from key_commands import create_key, keys_command
from postgres_databases import Databases


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'keys.db'}"
    url: str = request.getfixturevalue("database_url")
    return url


def listed(database: str, *arguments: str) -> list[dict[str, str | None]]:
    shown = keys_command(database, "list", "--json", *arguments)
    assert shown.exit_code == 0, shown.output
    keys: list[dict[str, str | None]] = json.loads(shown.stdout)
    return keys


def test_create_prints_the_key_once_on_stdout_and_its_id_on_stderr(database: str) -> None:
    created = keys_command(database, "create", "--workspace", "red")
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert re.fullmatch(r"bgk_[A-Za-z0-9]{44}", key)
    assert created.stdout == key + "\n"
    assert key not in created.stderr
    [shown] = listed(database)
    assert shown["id"] is not None and shown["id"] in created.stderr
    assert shown["workspace"] == "red"
    assert shown["prefix"] == key[:16]
    assert shown["revoked_at"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", shown["created_at"] or "")
    assert key_hash(key) not in json.dumps(shown)


def test_list_shows_every_key_oldest_first_or_one_workspace_and_never_a_key(
    database: str,
) -> None:
    red, blue, red_too = (create_key(database, name) for name in ("red", "blue", "red"))
    assert [key["id"] for key in listed(database)] == [red.id, blue.id, red_too.id]
    assert [key["id"] for key in listed(database, "--workspace", "red")] == [red.id, red_too.id]
    assert listed(database, "--workspace", "green") == []

    table = keys_command(database, "list")
    assert table.exit_code == 0, table.output
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["ID", "WORKSPACE", "PREFIX", "CREATED", "REVOKED"]
    assert [row.split()[:3] for row in rows] == [
        [red.id, "red", red.key[:16]],
        [blue.id, "blue", blue.key[:16]],
        [red_too.id, "red", red_too.key[:16]],
    ]
    for key in (red, blue, red_too):
        assert key.key not in table.stdout


def test_revoke_marks_the_key_once_and_an_unknown_id_is_an_error(database: str) -> None:
    red, blue = create_key(database, "red"), create_key(database, "blue")
    revoked = keys_command(database, "revoke", red.id)
    assert revoked.exit_code == 0, revoked.output
    assert f"Revoked {red.id}" in revoked.stderr
    first = listed(database)
    assert first[0]["revoked_at"] is not None and first[1]["revoked_at"] is None
    assert keys_command(database, "revoke", red.id).exit_code == 0
    assert listed(database) == first
    table = keys_command(database, "list").stdout.splitlines()
    assert table[1].endswith(" UTC") and table[2].endswith(" -")

    unknown = keys_command(database, "revoke", "key_0000")
    assert unknown.exit_code == 2
    assert "No key with id 'key_0000'" in unknown.stderr
    assert blue.id in {key["id"] for key in listed(database)}


def test_a_bad_workspace_name_creates_nothing(database: str) -> None:
    for name in ("", "has space", "-leading-dash", "x" * 65, "colon:name"):
        refused = keys_command(database, "create", "--workspace", name)
        assert refused.exit_code == 2, name
        assert "workspace name" in refused.stderr
    assert listed(database) == []


def test_an_unmigrated_postgres_database_says_to_migrate(databases: Databases) -> None:
    refused = keys_command(databases.create(), "list")
    assert refused.exit_code == 2
    assert "run `batchgate migrate`" in refused.stderr
