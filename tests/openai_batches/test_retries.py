"""Retrying an OpenAI batch's failed requests (POST /v1/batches/{id}/retry, our extension), with
the `openai` SDK: a new batch from a new input file of exactly those request lines, lineage on
both Batch objects as Message Batch retries have it, the body that picks which lines by status
code, error type and whether they ran, the results merged down the chain, and what cannot be
retried."""

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
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


def _retry(client: openai.OpenAI, batch_id: str, body: object = None) -> Batch:
    return client.post(f"/batches/{batch_id}/retry", cast_to=Batch, body=body)


def _custom_ids(client: openai.OpenAI, file_id: str) -> set[str]:
    return {line["custom_id"] for line in jsonl(client.files.content(file_id).text)}


def _results(client: openai.OpenAI, batch_id: str, **params: str) -> list[dict[str, Any]]:
    response = client.get(
        f"/batches/{batch_id}/results", cast_to=httpx.Response, options={"params": params}
    )
    return jsonl(response.text)


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


def test_a_retry_body_picks_failures_by_status_code_and_error_type(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    client = openai_client(
        start_server(
            simulator_fault_rate="0.7",
            simulator_fault_types="invalid_request_error,rate_limit_error,api_error",
        )
    )
    lines = [chat_line(f"r{i}", f"Question {i}") for i in range(60)]
    parent = wait_until_done(client, create_chat_batch(client, tmp_path / "in.jsonl", lines).id)
    assert parent.error_file_id is not None
    status_of = {
        line["custom_id"]: line["response"]["status_code"]
        for line in jsonl(client.files.content(parent.error_file_id).text)
    }
    assert set(status_of.values()) == {400, 429, 500}

    # Server errors and rate limits, as a code and a class: not the 400s, which would fail again.
    retry = _retry(client, parent.id, {"status_codes": ["5xx", 429]})
    retried = _custom_ids(client, retry.input_file_id)
    assert retried == {custom_id for custom_id, status in status_of.items() if status != 400}
    assert retry.request_counts is not None and retry.request_counts.total == len(retried)

    # The retry's rate-limited requests fail again (faults follow the params): by error type.
    retry = wait_until_done(client, retry.id)
    again = _retry(client, retry.id, {"error_types": ["rate_limit_error"]})
    assert _custom_ids(client, again.input_file_id) == {
        custom_id for custom_id, status in status_of.items() if status == 429
    }


def test_a_retry_body_leaves_out_the_requests_a_cancel_stopped(
    tmp_path: Path, start_on_store: Callable[..., Server]
) -> None:
    client = openai_client(start_on_store(simulator_latency_ms="300", max_concurrency="2"))
    lines = [chat_line(f"r{i}", f"Question {i}") for i in range(40)]
    batch = create_chat_batch(client, tmp_path / "in.jsonl", lines)
    while client.batches.retrieve(batch.id).request_counts.completed < 2:  # type: ignore[union-attr]
        time.sleep(0.05)
    client.batches.cancel(batch.id)
    cancelled = wait_until_done(client, batch.id)
    assert cancelled.status == "cancelled" and cancelled.error_file_id is not None
    error_lines = jsonl(client.files.content(cancelled.error_file_id).text)
    assert {line["error"]["code"] for line in error_lines} == {"batch_cancelled"}
    never_ran = {line["custom_id"] for line in error_lines}

    # No answered failure, and the cancelled ones left out: nothing to retry, nothing made.
    with pytest.raises(openai.BadRequestError) as refused:
        _retry(client, batch.id, {"status_codes": ["4xx", "5xx"], "include_cancelled": False})
    assert "matches the retry's filters" in refused.value.message
    assert client.batches.retrieve(batch.id).model_extra == {}
    # The cancelled ones only, without the expired (there are none).
    retry = _retry(client, batch.id, {"include_expired": False, "include_cancelled": True})
    assert _custom_ids(client, retry.input_file_id) == never_ran


BAD_BODIES = [
    ({"status_codes": [600]}, "status_codes"),
    ({"status_codes": ["6xx"]}, "status_codes"),
    ({"status_codes": [True]}, "status_codes"),
    ({"status_codes": "5xx"}, "status_codes"),
    ({"error_types": ["api_error", 1]}, "error_types"),
    ({"include_cancelled": "no"}, "include_cancelled"),
    ({"include_expired": 0}, "include_expired"),
    ({"result_types": ["errored"]}, "result_types"),
    (["5xx"], None),
]


def test_a_bad_retry_body_is_a_400_that_changes_nothing(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    client = openai_client(
        start_server(simulator_fault_rate="0.5", simulator_fault_types="api_error")
    )
    lines = [chat_line(f"r{i}", f"Question {i}") for i in range(10)]
    parent = wait_until_done(client, create_chat_batch(client, tmp_path / "in.jsonl", lines).id)
    files_before = {file.id for file in client.files.list()}
    for body, param in BAD_BODIES:
        with pytest.raises(openai.BadRequestError) as refused:
            _retry(client, parent.id, body)
        error = refused.value
        assert isinstance(error.body, dict)
        assert set(error.body) == {"message", "type", "param", "code"}
        assert (error.type, error.param, error.code) == ("invalid_request_error", param, None)
    assert {file.id for file in client.files.list()} == files_before
    assert client.batches.retrieve(parent.id).model_extra == {}
    # The same batch retried with a good body: classes in either case, codes as strings too.
    assert _retry(client, parent.id, {"status_codes": ["5XX", "500"]}).model_extra == {
        "parent_batch_id": parent.id,
        "retry_batch_ids": [],
    }


def test_the_merged_results_hold_each_requests_latest_line_down_the_chain(
    tmp_path: Path, start_on_store: Callable[..., Server]
) -> None:
    server = start_on_store(simulator_fault_rate="0.5", simulator_fault_types="api_error")
    client = openai_client(server)
    lines = [chat_line(f"r{i}", f"Question {i}") for i in range(30)]
    parent = wait_until_done(client, create_chat_batch(client, tmp_path / "in.jsonl", lines).id)
    assert parent.request_counts is not None and 0 < parent.request_counts.failed < 30
    parent_lines = _results(client, parent.id)
    # The simulator's faults follow a request's params: without faults, the retry succeeds.
    server.stop()
    server.env["BATCHGATE_SIMULATOR_FAULT_RATE"] = "0"
    server.start()
    child = wait_until_done(client, _retry(client, parent.id).id)
    assert child.request_counts is not None and child.request_counts.failed == 0
    child_lines = _results(client, child.id)

    merged = _results(client, parent.id, merged="true")
    assert sorted(line["custom_id"] for line in merged) == sorted(f"r{i}" for i in range(30))
    assert {line["response"]["status_code"] for line in merged} == {200}
    # Each line is its latest attempt's: the retry's, else the parent's.
    assert sorted(merged, key=str) == sorted(
        child_lines + [line for line in parent_lines if line["response"]["status_code"] == 200],
        key=str,
    )
    assert _results(client, parent.id, merged="true", lines="error") == []
    assert len(_results(client, parent.id, merged="true", lines="output")) == 30
    # The retry's own merged results are its own lines.
    assert sorted(_results(client, child.id, merged="true"), key=str) == sorted(
        child_lines, key=str
    )
    with pytest.raises(openai.BadRequestError):
        _results(client, parent.id, merged="true", follow="true")
