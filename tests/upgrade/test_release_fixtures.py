"""Databases written by earlier releases open under this one with every batch, result and key
as they were, and the batch that was running when the release was killed finishes exactly once.

Each folder under fixtures/ was written by a release (make_fixtures.py says how): a SQLite file
and a PostgreSQL dump, each with what the release served (expected.json, <batch>.jsonl). Those
of releases that served the OpenAI Batch API hold OpenAI batches too.
"""

import contextlib
import json
import shutil
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import openai
import psycopg
import pytest

from batchgate.storage.migrations.sqlite import file_schema_status
from conftest import Server, run_cli, simple_request, wait_until_ended
from postgres_databases import Databases

FIXTURES = Path(__file__).parent / "fixtures"
RELEASES = sorted(folder.name for folder in FIXTURES.iterdir())
CENTURY = str(100 * 365 * 86_400)
# As the fixtures were written: nothing expires or is archived for a century.
SETTINGS = {"expiry_seconds": CENTURY, "retention_seconds": CENTURY}


def check_what_the_release_left(server: Server, fixture: Path) -> None:
    expected: dict[str, Any] = json.loads((fixture / "expected.json").read_text())
    client = server.client(expected["api_key"])
    for name in ("ended", "canceled"):
        before = expected["batches"][name]
        now = client.messages.batches.with_raw_response.retrieve(before["id"]).json()
        # Later releases may add fields; what the release served stays as it was, its results
        # URL naming this server.
        assert {key: now[key] for key in before} == {
            **before,
            "results_url": before["results_url"].replace(
                urlsplit(before["results_url"]).netloc, f"127.0.0.1:{server.port}"
            ),
        }
        results = client.messages.batches.with_raw_response.results(before["id"])
        assert results.http_response.read() == (fixture / f"{name}.jsonl").read_bytes()

    interrupted = expected["batches"]["interrupted"]
    ended = wait_until_ended(client, interrupted["id"])
    assert ended.request_counts.succeeded == len(expected["interrupted_custom_ids"])
    seen = Counter(result.custom_id for result in client.messages.batches.results(ended.id))
    assert seen == Counter(expected["interrupted_custom_ids"])

    fresh = client.messages.batches.create(requests=[simple_request("after-the-upgrade")])
    after = wait_until_ended(client, fresh.id)
    assert after.request_counts.succeeded == 1
    if "openai" in expected:
        check_the_openai_batches(server, fixture, expected)


def check_the_openai_batches(server: Server, fixture: Path, expected: dict[str, Any]) -> None:
    """The ended OpenAI batch, its input, output and error files as the release served them; the
    interrupted one finished with each custom_id once."""
    left = expected["openai"]
    client = openai.OpenAI(
        base_url=f"{server.base_url}/v1", api_key=expected["api_key"], max_retries=0
    )
    ended = left["ended"]
    now = client.batches.with_raw_response.retrieve(ended["id"]).http_response.json()
    assert {key: now[key] for key in ended} == ended
    input_file = left["input_file"]
    now = client.files.with_raw_response.retrieve(input_file["id"]).http_response.json()
    assert {key: now[key] for key in input_file} == input_file
    assert client.files.content(input_file["id"]).content == left["input_bytes"].encode()
    for kind in ("output", "error"):
        content = client.files.content(ended[f"{kind}_file_id"]).content
        assert content == (fixture / f"openai_ended.{kind}.jsonl").read_bytes()

    interrupted = left["interrupted"]
    deadline = time.monotonic() + 60
    while (batch := client.batches.retrieve(interrupted["id"])).status != "completed":
        assert time.monotonic() < deadline, batch.status
        time.sleep(0.05)
    assert batch.request_counts is not None
    assert batch.request_counts.completed == batch.request_counts.total == 60
    assert batch.output_file_id is not None and batch.error_file_id is None
    lines = client.files.content(batch.output_file_id).text.splitlines()
    seen = Counter(json.loads(line)["custom_id"] for line in lines)
    assert seen == Counter(f"openai-{name}" for name in expected["interrupted_custom_ids"])


@pytest.mark.parametrize("release", RELEASES)
def test_a_sqlite_file_of_an_earlier_release_opens_with_no_command(
    release: str, tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    fixture = FIXTURES / release / "sqlite"
    database = tmp_path / "batchgate.db"
    shutil.copyfile(fixture / "batchgate.sqlite3", database)

    upgraded = file_schema_status(str(database)).pending

    server = start_server(**SETTINGS)

    check_what_the_release_left(server, fixture)
    # The file is copied before it is upgraded; the last release's, at this schema, is not.
    backups = list(tmp_path.glob("batchgate.db.before-v*"))
    assert len(backups) == (1 if upgraded else 0)
    for backup in backups:
        assert every_row(backup) == every_row(fixture / "batchgate.sqlite3")


def every_row(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        tables = [
            name for (name,) in db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")
        ]
        return {table: sorted(db.execute(f"SELECT * FROM {table}")) for table in tables}


@pytest.mark.parametrize("release", RELEASES)
def test_a_postgres_database_of_an_earlier_release_opens_after_migrate(
    release: str,
    databases: Databases,
    tmp_path: Path,
    start_server: Callable[..., Server],
) -> None:
    fixture = FIXTURES / release / "postgres"
    url = databases.create()
    with psycopg.connect(url, autocommit=True) as db:
        db.execute((fixture / "dump.sql").read_bytes())
    migrated = run_cli("migrate", database_url=url)
    assert migrated.returncode == 0, migrated.stderr

    server = start_server(database_url=url, **SETTINGS)

    check_what_the_release_left(server, fixture)
