"""Files that expire, with the `openai` SDK: `expires_after` on an upload, a batch's
`output_expires_after` on its output and error files, both checked against OpenAI's range; an
expired file is 404 at once and deleted, bytes and all, by the engine's housekeeping (its bytes
once no batch's requests refer to them). The
model of a batch and its timestamps, as the SDK's Batch type reads them."""

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest

from conftest import Server, wait_until_in_flight
from openai_batches.conftest import (
    chat_line,
    database_rows,
    jsonl,
    openai_client,
    wait_until_done,
    write_jsonl,
)

HOUR = 3600
THIRTY_DAYS = 30 * 24 * HOUR


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
    # A batch file without `expires_after` expires after 30 days, as OpenAI's do.
    assert kept.expires_at == kept.created_at + THIRTY_DAYS
    assert expiring.expires_at == expiring.created_at + HOUR
    assert client.files.retrieve(expiring.id).expires_at == expiring.expires_at

    database_rows(
        server, f"UPDATE files SET expires_at = expires_at - {2 * HOUR} WHERE id = '{expiring.id}'"
    )
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(expiring.id)
    with pytest.raises(openai.NotFoundError):
        client.files.content(expiring.id)
    deadline = time.monotonic() + 10
    while database_rows(server, f"SELECT id FROM files WHERE id = '{expiring.id}'"):
        assert time.monotonic() < deadline, "housekeeping did not delete the expired file"
        time.sleep(0.1)
    pieces = f"SELECT piece FROM file_pieces WHERE file_id = '{expiring.id}'"
    assert database_rows(server, pieces) == []
    assert [file.id for file in client.files.list()] == [kept.id]
    assert client.files.content(kept.id).read() == path.read_bytes()


def test_the_default_expiry_of_batch_files_is_a_setting(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [chat_line("a", "Hi")])
    weekly = openai_client(start_server(openai_batch_file_expiry_seconds=str(7 * 24 * HOUR)))
    file = _upload(weekly, path)
    assert file.expires_at == file.created_at + 7 * 24 * HOUR
    explicit = _upload(weekly, path, expires_after={"anchor": "created_at", "seconds": HOUR})
    assert explicit.expires_at == explicit.created_at + HOUR

    kept = _upload(openai_client(start_server(openai_batch_file_expiry_seconds="0")), path)
    assert kept.expires_at is None


@pytest.mark.parametrize("gone", ["expired", "deleted"])
def test_a_batch_runs_to_its_end_when_its_input_file_goes_meanwhile(
    tmp_path: Path, start_on_store: Callable[..., Server], gone: str
) -> None:
    server = start_on_store(simulator_latency_ms="200", max_concurrency="2", chunk_size="4")
    client = openai_client(server)
    lines = [chat_line(f"r{i}", f"Question {i}") for i in range(30)]
    input_file = _upload(client, write_jsonl(tmp_path / "in.jsonl", lines))
    created = client.batches.create(
        input_file_id=input_file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    if gone == "expired":
        database_rows(
            server,
            f"UPDATE files SET expires_at = expires_at - {THIRTY_DAYS + HOUR}"
            f" WHERE id = '{input_file.id}'",
        )
    else:
        client.files.delete(input_file.id)
    deadline = time.monotonic() + 10
    while database_rows(server, f"SELECT id FROM files WHERE id = '{input_file.id}'"):
        assert time.monotonic() < deadline, "housekeeping did not delete the expired file"
        time.sleep(0.1)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(input_file.id)
    assert input_file.id not in [file.id for file in client.files.list()]
    pieces = f"SELECT piece FROM file_pieces WHERE file_id = '{input_file.id}'"
    # The batch's chunks refer to the file's lines: its bytes stay while they do.
    assert database_rows(server, pieces) != []
    running = client.batches.retrieve(created.id)
    # The file went while the batch still had requests to run.
    assert running.status == "in_progress"
    assert running.request_counts is not None and running.request_counts.completed < 30

    batch = wait_until_done(client, created.id)
    assert batch.status == "completed"
    assert batch.request_counts is not None and batch.request_counts.completed == 30
    assert batch.output_file_id is not None and batch.error_file_id is None
    answered = jsonl(client.files.content(batch.output_file_id).text)
    assert sorted(line["custom_id"] for line in answered) == sorted(f"r{i}" for i in range(30))
    assert batch.input_file_id == input_file.id
    assert database_rows(server, pieces) != []
    # Once the batch's requests go (archived past the retention), the file's bytes go too.
    database_rows(
        server,
        f"UPDATE batches SET created_at = created_at - {THIRTY_DAYS} WHERE id = '{batch.id}'",
    )
    deadline = time.monotonic() + 10
    while database_rows(server, pieces):
        assert time.monotonic() < deadline, "housekeeping did not archive the batch"
        time.sleep(0.1)
    lines_row = f"SELECT file_id FROM input_file_lines WHERE file_id = '{input_file.id}'"
    assert database_rows(server, lines_row) == []


def test_an_archived_batchs_output_and_error_files_go_with_its_results(
    tmp_path: Path, start_on_store: Callable[..., Server]
) -> None:
    """Past the retention period a batch's results are archived: its output and error files,
    made of them, are then 404 as an expired file is (the batch keeps their ids, as OpenAI's
    keep those of expired files), and there is nothing left to retry."""
    server = start_on_store(simulator_fault_rate="0.5")
    client = openai_client(server)
    lines = [chat_line(f"r{i}", f"Question {i}") for i in range(20)]
    input_file = _upload(client, write_jsonl(tmp_path / "in.jsonl", lines))
    created = client.batches.create(
        input_file_id=input_file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    batch = wait_until_done(client, created.id)
    made = [batch.output_file_id, batch.error_file_id]
    assert None not in made
    assert jsonl(client.files.content(str(batch.error_file_id)).text)

    database_rows(
        server,
        f"UPDATE batches SET created_at = created_at - {THIRTY_DAYS} WHERE id = '{batch.id}'",
    )
    archived = f"SELECT id FROM batches WHERE id = '{batch.id}' AND archived_at IS NOT NULL"
    deadline = time.monotonic() + 10
    while not database_rows(server, archived):
        assert time.monotonic() < deadline, "housekeeping did not archive the batch"
        time.sleep(0.1)

    after = client.batches.retrieve(batch.id)
    assert [after.output_file_id, after.error_file_id] == made
    for file_id in made:
        with pytest.raises(openai.NotFoundError):
            client.files.retrieve(str(file_id))
        with pytest.raises(openai.NotFoundError):
            client.files.content(str(file_id))
    assert not set(made) & {file.id for file in client.files.list()}
    with pytest.raises(openai.NotFoundError, match="archived"):
        client.post(f"/batches/{batch.id}/retry", cast_to=httpx.Response)
    # The input file keeps its own expiry.
    assert client.files.retrieve(input_file.id).id == input_file.id


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
    # Waited for in the database: the first retrieve after the end records the output files,
    # and it comes late here, as a client's may.
    deadline = time.monotonic() + 60
    query = f"SELECT ended_at FROM batches WHERE id = '{created.id}'"
    while (ended_at := database_rows(server, query)[0][0]) is None:
        assert time.monotonic() < deadline, "the batch did not end"
        time.sleep(0.1)
    time.sleep(1.5)
    batch = wait_until_done(client, created.id)
    assert batch.status == "completed" and batch.output_file_id and batch.error_file_id
    # Their expiry counts from the batch's end, not from when they were first read.
    for file_id in (batch.output_file_id, batch.error_file_id):
        file = client.files.retrieve(file_id)
        assert file.created_at == batch.completed_at
        assert file.expires_at == int(ended_at + 2 * HOUR)  # type: ignore[operator]

    output = batch.output_file_id
    database_rows(
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
    server = start_server(simulator_latency_ms="2000")
    client = openai_client(server)
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

    # A cancel before the engine takes the request would end the batch at once.
    wait_until_in_flight(server)
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
