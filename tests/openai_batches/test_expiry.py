"""Files that expire, with the `openai` SDK: `expires_after` on an upload, a batch's
`output_expires_after` on its output and error files, both checked against OpenAI's range; an
expired file is 404 at once and deleted, bytes and all, by the engine's housekeeping. The
model of a batch and its timestamps, as the SDK's Batch type reads them."""

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import openai
import psycopg
import pytest

from conftest import Server
from openai_batches.conftest import chat_line, openai_client, wait_until_done, write_jsonl

HOUR = 3600
THIRTY_DAYS = 30 * 24 * HOUR


def _database(server: Server, query: str) -> list[tuple[object, ...]]:
    """Runs `query` on the server's database, either store: here, to let time pass for files
    by moving their expiry into the past, and to see what is left of them."""
    url = server.env["BATCHGATE_DATABASE_URL"]
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            return db.execute(query).fetchall()
    with psycopg.connect(url, autocommit=True) as pg:
        cursor = pg.execute(query)
        return cursor.fetchall() if cursor.description else []


def _upload(client: openai.OpenAI, path: Path, **extra: object) -> openai.types.FileObject:
    with path.open("rb") as file:
        return client.files.create(file=file, purpose="batch", **extra)  # type: ignore[arg-type]


def test_an_uploaded_file_expires_and_is_deleted_with_its_bytes(
    tmp_path: Path, start_on_store: Callable[..., Server]
) -> None:
    server = start_on_store()
    client = openai_client(server)
    path = write_jsonl(tmp_path / "in.jsonl", [chat_line("a", "Hi")])
    kept = _upload(client, path)
    expiring = _upload(client, path, expires_after={"anchor": "created_at", "seconds": HOUR})
    assert kept.expires_at is None
    assert expiring.expires_at == expiring.created_at + HOUR
    assert client.files.retrieve(expiring.id).expires_at == expiring.expires_at

    _database(
        server, f"UPDATE files SET expires_at = expires_at - {2 * HOUR} WHERE id = '{expiring.id}'"
    )
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(expiring.id)
    with pytest.raises(openai.NotFoundError):
        client.files.content(expiring.id)
    deadline = time.monotonic() + 10
    while _database(server, f"SELECT id FROM files WHERE id = '{expiring.id}'"):
        assert time.monotonic() < deadline, "housekeeping did not delete the expired file"
        time.sleep(0.1)
    assert _database(server, f"SELECT piece FROM file_pieces WHERE file_id = '{expiring.id}'") == []
    assert [file.id for file in client.files.list()] == [kept.id]
    assert client.files.content(kept.id).read() == path.read_bytes()


@pytest.mark.parametrize(
    ("expires_after", "param"),
    [
        ({"anchor": "created_at", "seconds": HOUR - 1}, "expires_after.seconds"),
        ({"anchor": "created_at", "seconds": THIRTY_DAYS + 1}, "expires_after.seconds"),
        ({"anchor": "last_active_at", "seconds": HOUR}, "expires_after.anchor"),
        ({"anchor": "created_at", "seconds": "\u00b2\u00b2\u00b2\u00b2"}, "expires_after.seconds"),
        ({"anchor": "created_at", "seconds": "9" * 5000}, "expires_after.seconds"),
    ],
)
def test_an_upload_whose_expiry_is_out_of_range_is_refused(
    tmp_path: Path, start_server: Callable[..., Server], expires_after: object, param: str
) -> None:
    client = openai_client(start_server())
    path = write_jsonl(tmp_path / "in.jsonl", [chat_line("a", "Hi")])
    with pytest.raises(openai.BadRequestError) as refused:
        _upload(client, path, expires_after=expires_after)
    assert refused.value.param == param
    assert refused.value.type == "invalid_request_error"
    assert client.files.list().data == []


def test_a_batch_with_output_expires_after_gives_its_files_that_expiry(
    tmp_path: Path, start_on_store: Callable[..., Server]
) -> None:
    server = start_on_store(
        simulator_fault_rate="0.5", simulator_fault_types="invalid_request_error"
    )
    client = openai_client(server)
    lines = [chat_line(f"r{i}", f"Question {i}") for i in range(20)]
    input_file = _upload(client, write_jsonl(tmp_path / "in.jsonl", lines))
    created = client.batches.create(
        input_file_id=input_file.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        output_expires_after={"anchor": "created_at", "seconds": 2 * HOUR},
    )
    assert created.model == "gpt-4o-mini"
    batch = wait_until_done(client, created.id)
    assert batch.status == "completed" and batch.output_file_id and batch.error_file_id
    for file_id in (batch.output_file_id, batch.error_file_id):
        file = client.files.retrieve(file_id)
        assert file.expires_at == file.created_at + 2 * HOUR

    output = batch.output_file_id
    _database(
        server, f"UPDATE files SET expires_at = expires_at - {3 * HOUR} WHERE id = '{output}'"
    )
    with pytest.raises(openai.NotFoundError):
        client.files.content(batch.output_file_id)
    assert client.files.content(batch.error_file_id).text
    # The batch still names its file, as OpenAI's does once the file has gone.
    assert client.batches.retrieve(batch.id).output_file_id == batch.output_file_id


@pytest.mark.parametrize(
    ("output_expires_after", "param"),
    [
        ({"anchor": "created_at", "seconds": 60}, "output_expires_after.seconds"),
        ({"anchor": "created_at", "seconds": "3600"}, "output_expires_after.seconds"),
        ({"anchor": "now", "seconds": HOUR}, "output_expires_after.anchor"),
        ("one hour", "output_expires_after"),
    ],
)
def test_a_batch_whose_output_expiry_is_out_of_range_is_refused(
    tmp_path: Path, start_server: Callable[..., Server], output_expires_after: object, param: str
) -> None:
    client = openai_client(start_server())
    input_file = _upload(client, write_jsonl(tmp_path / "in.jsonl", [chat_line("a", "Hi")]))
    with pytest.raises(openai.BadRequestError) as refused:
        client.batches.create(
            input_file_id=input_file.id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            output_expires_after=output_expires_after,  # type: ignore[arg-type]
        )
    assert refused.value.param == param
    assert client.batches.list().data == []


def test_each_timestamp_is_set_by_its_transition(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    client = openai_client(start_server(simulator_latency_ms="2000"))
    input_file = _upload(client, write_jsonl(tmp_path / "in.jsonl", [chat_line("a", "Hi")]))
    running = client.batches.create(
        input_file_id=input_file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    # Checked within the create: it is never seen validating.
    assert running.status == "in_progress"
    assert running.in_progress_at is not None and running.in_progress_at >= running.created_at
    assert running.expires_at == running.created_at + 24 * HOUR
    unset = ("finalizing_at", "completed_at", "failed_at", "expired_at", "cancelling_at")
    assert [name for name in unset if getattr(running, name) is not None] == []
    assert running.cancelled_at is None

    cancelling = client.batches.cancel(running.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
    cancelled = wait_until_done(client, running.id)
    assert cancelled.status == "cancelled"
    assert cancelled.cancelled_at is not None and cancelled.cancelled_at >= cancelled.cancelling_at
    assert cancelled.completed_at is None and cancelled.finalizing_at is None

    done = client.batches.create(
        input_file_id=input_file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    completed = wait_until_done(client, done.id)
    assert completed.status == "completed" and completed.model == "gpt-4o-mini"
    assert completed.finalizing_at is not None and completed.completed_at is not None
    assert completed.in_progress_at <= completed.finalizing_at <= completed.completed_at  # type: ignore[operator]
    assert completed.cancelling_at is None and completed.cancelled_at is None
