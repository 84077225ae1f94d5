"""OpenAI's batch guide, run as a user runs it, with the unmodified `openai` SDK: upload a file
of requests, create the batch, poll it, download its output and error files; cancel; list."""

import time
from collections.abc import Callable
from pathlib import Path

import anthropic
import openai
import pytest

from conftest import Server, simple_request
from openai_batches.conftest import chat_line, jsonl, openai_client, wait_until_done, write_jsonl


def test_the_batch_guide_end_to_end(tmp_path: Path, start_on_store: Callable[..., Server]) -> None:
    client = openai_client(start_on_store())
    path = write_jsonl(
        tmp_path / "batchinput.jsonl",
        [
            chat_line("request-1", "Hello world!"),
            chat_line("request-2", "What is the capital of France?", stop=["END"]),
            chat_line("request-3", "Name a colour.", max_completion_tokens=50, temperature=0.2),
            # Valid for OpenAI, but a Messages backend gives one answer: its own error line.
            chat_line("request-4", "Two answers, please.", n=2),
        ],
    )
    with path.open("rb") as upload:
        batch_input_file = client.files.create(file=upload, purpose="batch")
    assert batch_input_file.id.startswith("file-")
    assert batch_input_file.bytes == path.stat().st_size
    assert (batch_input_file.purpose, batch_input_file.filename) == ("batch", "batchinput.jsonl")

    created = client.batches.create(
        input_file_id=batch_input_file.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"description": "nightly eval job"},
    )
    assert created.id.startswith("batch_") and created.status == "in_progress"
    assert created.metadata == {"description": "nightly eval job"}

    batch = wait_until_done(client, created.id)
    assert batch.status == "completed"
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed) == (4, 3)
    assert batch.request_counts.failed == 1
    assert batch.completed_at is not None and batch.completed_at >= batch.created_at
    assert batch.usage is not None and batch.usage.total_tokens > 0
    assert batch.output_file_id is not None and batch.error_file_id is not None

    output = client.files.content(batch.output_file_id)
    lines = {line["custom_id"]: line for line in jsonl(output.text)}
    assert sorted(lines) == ["request-1", "request-2", "request-3"]
    for line in lines.values():
        assert line["id"].startswith("batch_req_") and line["error"] is None
        assert line["response"]["status_code"] == 200
        completion = openai.types.chat.ChatCompletion.model_validate(line["response"]["body"])
        assert completion.choices[0].message.content
        assert completion.choices[0].finish_reason in ("stop", "length")
    # The batch's usage sums its answers' tokens.
    assert batch.usage.input_tokens == sum(
        line["response"]["body"]["usage"]["prompt_tokens"] for line in lines.values()
    )
    assert batch.usage.output_tokens == sum(
        line["response"]["body"]["usage"]["completion_tokens"] for line in lines.values()
    )
    errors = jsonl(client.files.content(batch.error_file_id).text)
    assert [line["custom_id"] for line in errors] == ["request-4"]
    assert errors[0]["response"]["status_code"] == 400
    assert "n" in errors[0]["response"]["body"]["error"]["message"]

    output_file = client.files.retrieve(batch.output_file_id)
    assert output_file.purpose == "batch_output"
    assert output_file.bytes == len(output.content)
    listed = {file.id for file in client.files.list()}
    assert {batch_input_file.id, batch.output_file_id, batch.error_file_id} <= listed

    assert client.files.delete(batch_input_file.id).deleted
    with pytest.raises(openai.NotFoundError) as missing:
        client.files.retrieve(batch_input_file.id)
    assert missing.value.body["message"]  # type: ignore[index]
    # The batch ran from its stored requests: deleting its input file changes nothing.
    assert client.batches.retrieve(batch.id).status == "completed"


def test_a_cancelled_batch_ends_its_unstarted_requests_as_batch_cancelled(
    tmp_path: Path, start_on_store: Callable[..., Server]
) -> None:
    client = openai_client(start_on_store(simulator_latency_ms="200", max_concurrency="2"))
    path = write_jsonl(tmp_path / "in.jsonl", [chat_line(f"r{i}", "Hi") for i in range(100)])
    with path.open("rb") as upload:
        input_file = client.files.create(file=upload, purpose="batch")
    created = client.batches.create(
        input_file_id=input_file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )

    # Once the engine runs its requests: a cancel before it took any ends the batch at once.
    deadline = time.monotonic() + 20
    while not getattr(client.batches.retrieve(created.id).request_counts, "completed", 0):
        assert time.monotonic() < deadline, "the batch never started"
        time.sleep(0.05)
    cancelling = client.batches.cancel(created.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
    batch = wait_until_done(client, created.id)
    assert batch.status == "cancelled" and batch.cancelled_at is not None
    assert batch.request_counts is not None
    counts = batch.request_counts
    assert counts.total == 100 and counts.completed + counts.failed == 100 and counts.failed > 0
    assert batch.error_file_id is not None
    errors = jsonl(client.files.content(batch.error_file_id).text)
    assert len(errors) == counts.failed
    assert {line["error"]["code"] for line in errors} == {"batch_cancelled"}
    assert all(line["response"] is None for line in errors)

    with pytest.raises(openai.BadRequestError):
        client.batches.cancel(created.id)


def test_batches_are_listed_newest_first_a_page_at_a_time(
    tmp_path: Path, start_on_store: Callable[..., Server]
) -> None:
    server = start_on_store()
    client = openai_client(server)
    path = write_jsonl(tmp_path / "in.jsonl", [chat_line("only", "Hi")])
    with path.open("rb") as upload:
        input_file = client.files.create(file=upload, purpose="batch")
    created = [
        client.batches.create(
            input_file_id=input_file.id, endpoint="/v1/chat/completions", completion_window="24h"
        ).id
        for _ in range(5)
    ]

    first = client.batches.list(limit=2)
    assert [batch.id for batch in first.data] == created[::-1][:2] and first.has_more
    # The SDK walks the pages with `after`.
    assert [batch.id for batch in client.batches.list(limit=2)] == created[::-1]
    # They are not Message Batches, nor the other way round: each API finds only its own.
    messages = server.client()
    assert list(messages.messages.batches.list()) == []
    with pytest.raises(anthropic.NotFoundError):
        messages.messages.batches.retrieve(created[0])
    with pytest.raises(anthropic.NotFoundError):
        messages.messages.batches.cancel(created[0])
    message_batch = messages.messages.batches.create(requests=[simple_request("a")])  # type: ignore[list-item]
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve(message_batch.id)


def test_a_batch_past_its_window_expires_and_lists_its_unrun_requests_as_batch_expired(
    tmp_path: Path, start_on_store: Callable[..., Server]
) -> None:
    # The server's expiry shortens the 24 h window, as it does a Message Batch's.
    server = start_on_store(expiry_seconds="1", simulator_latency_ms="300", max_concurrency="1")
    client = openai_client(server)
    path = write_jsonl(tmp_path / "in.jsonl", [chat_line(f"r{i}", "Hi") for i in range(20)])
    with path.open("rb") as upload:
        input_file = client.files.create(file=upload, purpose="batch")
    created = client.batches.create(
        input_file_id=input_file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert created.expires_at is not None and created.expires_at <= created.created_at + 2

    batch = wait_until_done(client, created.id, timeout=30)
    assert batch.status == "expired" and batch.expired_at is not None
    assert batch.request_counts is not None and batch.request_counts.failed > 0
    assert batch.error_file_id is not None
    errors = jsonl(client.files.content(batch.error_file_id).text)
    assert {line["error"]["code"] for line in errors} == {"batch_expired"}
    assert len(errors) == batch.request_counts.failed
