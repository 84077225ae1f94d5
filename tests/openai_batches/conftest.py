"""Servers on either store for the OpenAI Batch API's tests, and the unmodified `openai` SDK
pointed at them (`base_url=…/v1`, as OPENAI_BASE_URL would)."""

import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import openai
import psycopg
import pytest
from openai.types import Batch

from batchgate.storage.migrations.postgres import migrate
from conftest import KEY, Server
from postgres_databases import Databases

ENDED = ("completed", "failed", "expired", "cancelled")


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def start_on_store(
    store_kind: str, tmp_path: Path, databases: Databases
) -> Iterator[Callable[..., Server]]:
    """Starts a server on the parametrized store with the given settings (BATCHGATE_<NAME>)."""
    started: list[Server] = []

    def start(**settings: str) -> Server:
        directory = tmp_path / f"server{len(started)}"
        directory.mkdir()
        if store_kind == "postgres":
            url = databases.create()
            migrate(url)
            settings["database_url"] = url
        server = Server(directory, **settings).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def database_rows(server: Server, query: str) -> list[tuple[object, ...]]:
    """Runs `query` on the server's database, either store: to let time pass for files by
    moving their expiry into the past, or to see what is stored of them."""
    url = server.env["BATCHGATE_DATABASE_URL"]
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            return db.execute(query).fetchall()
    with psycopg.connect(url, autocommit=True) as pg:
        cursor = pg.execute(query)
        return cursor.fetchall() if cursor.description else []


def openai_client(server: Server, api_key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=api_key, max_retries=0)


def chat_line(custom_id: str, text: str, **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": text},
            ],
            "max_tokens": 1000,
            **body,
        },
    }


def write_jsonl(path: Path, lines: Sequence[object]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def create_chat_batch(
    client: openai.OpenAI, path: Path, lines: Sequence[object], **options: Any
) -> Batch:
    """Uploads `lines` as a JSONL file and creates a chat batch of it."""
    with write_jsonl(path, lines).open("rb") as upload:
        input_file = client.files.create(file=upload, purpose="batch")
    return client.batches.create(
        input_file_id=input_file.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        **options,
    )


def wait_until_done(client: openai.OpenAI, batch_id: str, timeout: float = 60) -> Batch:
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in ENDED:
            return batch
        if time.monotonic() > deadline:
            raise AssertionError(f"batch {batch_id} did not end: {batch}")
        time.sleep(0.05)


def jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]
