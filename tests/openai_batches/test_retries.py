"""Retrying an OpenAI batch's failed requests (POST /v1/batches/{id}/retry, our extension), with
the `openai` SDK: a new batch from a new input file of exactly those request lines, lineage on
both Batch objects as Message Batch retries have it, and what cannot be retried."""

import json
from collections.abc import Callable
from pathlib import Path

import openai
import pytest
from openai.types import Batch

from conftest import Server
from openai_batches.conftest import (
    chat_line,
    create_chat_batch,
    jsonl,
    openai_client,
    wait_until_done,
)

THIRTY_DAYS = 30 * 24 * 3600


def _retry(client: openai.OpenAI, batch_id: str) -> Batch:
    return client.post(f"/batches/{batch_id}/retry", cast_to=Batch)


def test_a_retry_runs_exactly_the_failed_requests_as_submitted(
    tmp_path: Path, start_on_store: Callable[..., Server]
) -> None:
    client = openai_client(
        start_on_store(simulator_fault_rate="0.5", simulator_fault_types="api_error")
    )
    lines = [chat_line(f"r{i}", f"Question {i}", temperature=0.5) for i in range(30)]
    created = create_chat_batch(client, tmp_path / "in.jsonl", lines, metadata={"run": "retried"})
    parent = wait_until_done(client, created.id)
    assert parent.request_counts is not None and parent.error_file_id is not None
    failed_ids = {
        line["custom_id"] for line in jsonl(client.files.content(parent.error_file_id).text)
    }
    assert 0 < len(failed_ids) == parent.request_counts.failed < 30
    # The parent's input file may be gone: the requests are the batch's own.
    client.files.delete(parent.input_file_id)

    retry = _retry(client, parent.id)
    assert retry.id != parent.id and retry.status == "in_progress"
    assert retry.request_counts is not None and retry.request_counts.total == len(failed_ids)
    assert (retry.endpoint, retry.model, retry.metadata) == (
        parent.endpoint,
        parent.model,
        {"run": "retried"},
    )
    assert retry.model_extra == {"parent_batch_id": parent.id, "retry_batch_ids": []}
    input_file = client.files.retrieve(retry.input_file_id)
    assert input_file.purpose == "batch"
    assert input_file.expires_at == input_file.created_at + THIRTY_DAYS
    submitted = jsonl(client.files.content(retry.input_file_id).text)
    assert sorted(submitted, key=lambda line: line["custom_id"]) == sorted(
        (line for line in lines if line["custom_id"] in failed_ids),
        key=lambda line: str(line["custom_id"]),
    )

    # The simulator's faults follow the params: the same requests fail again.
    child = wait_until_done(client, retry.id)
    assert child.request_counts is not None and child.request_counts.failed == len(failed_ids)
    again = client.batches.retrieve(parent.id)
    assert again.model_extra is not None
    assert again.model_extra["parent_batch_id"] is None
    assert again.model_extra["retry_batch_ids"] == [retry.id]
    assert again.model_extra["merged_request_counts"] == {
        "total": 30,
        "completed": parent.request_counts.completed,
        "failed": len(failed_ids),
    }
    listed = {batch.id: batch for batch in client.batches.list()}
    assert listed[parent.id].model_extra == again.model_extra

    # A batch is retried once; its retry can be retried in turn.
    with pytest.raises(openai.BadRequestError) as refused:
        _retry(client, parent.id)
    assert "retried already" in refused.value.message
    grandchild = _retry(client, retry.id)
    assert grandchild.model_extra is not None
    assert grandchild.model_extra["parent_batch_id"] == retry.id
    assert (
        json.loads(client.files.content(grandchild.input_file_id).text.splitlines()[0])["custom_id"]
        in failed_ids
    )


def test_what_cannot_be_retried_is_refused(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    client = openai_client(start_server(simulator_latency_ms="2000"))
    running = create_chat_batch(
        client, tmp_path / "a.jsonl", [chat_line("a", "Hi")], metadata={"run": "retried"}
    )
    with pytest.raises(openai.BadRequestError) as refused:
        _retry(client, running.id)
    assert "only ended batches" in refused.value.message
    failed = create_chat_batch(
        client,
        tmp_path / "b.jsonl",
        [chat_line("s", "Hi"), chat_line("s", "Hi")],
        metadata={"run": "retried"},
    )
    assert failed.status == "failed"
    with pytest.raises(openai.BadRequestError):
        _retry(client, failed.id)
    with pytest.raises(openai.NotFoundError):
        _retry(client, "batch_nothing")
    done = wait_until_done(client, running.id)
    assert done.status == "completed"
    with pytest.raises(openai.BadRequestError) as refused:
        _retry(client, done.id)
    assert "nothing to retry" in refused.value.message
    # Nothing was made by the refused retries: the two input files and the output file.
    assert sorted(file.purpose for file in client.files.list()) == [
        "batch",
        "batch",
        "batch_output",
    ]
