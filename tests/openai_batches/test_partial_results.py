"""An OpenAI batch's output and error lines while it runs (GET /v1/batches/{id}/results, our
extension), read with the `openai` SDK's own client.get: the Message Batches' `partial`,
`follow`, `after_part` and `skip_lines`, and `lines` for one file's lines; byte for byte the lines
its output and error files hold once it has ended."""

import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest

from conftest import Server
from openai_batches.conftest import (
    chat_line,
    create_chat_batch,
    openai_client,
    wait_until_done,
)

COUNT = 40


def _results(client: openai.OpenAI, batch_id: str, **params: str) -> httpx.Response:
    return client.get(
        f"/batches/{batch_id}/results",
        cast_to=httpx.Response,
        options={"params": params, "timeout": 60},
    )


def _lines(response: httpx.Response) -> list[bytes]:
    return response.content.splitlines()


def test_an_openai_batchs_lines_are_read_while_it_runs(
    tmp_path: Path, start_on_store: Callable[..., Server]
) -> None:
    server = start_on_store(
        simulator_latency_ms="200",
        max_concurrency="2",
        chunk_size="5",
        simulator_fault_rate="0.5",
        simulator_fault_types="invalid_request_error",
    )
    client = openai_client(server)
    batch_id = create_chat_batch(
        client, tmp_path / "in.jsonl", [chat_line(f"r{i}", f"Q {i}") for i in range(COUNT)]
    ).id
    # Anthropic's rule as Message Batches': the whole results wait for the end.
    with pytest.raises(openai.BadRequestError):
        _results(client, batch_id)

    while not _lines(early := _results(client, batch_id, partial="true")):
        time.sleep(0.05)
    assert client.batches.retrieve(batch_id).status == "in_progress"
    reached = early.headers["batchgate-last-part"]
    so_far = _lines(early)
    assert 0 < len(so_far) < COUNT
    for line in so_far:
        assert set(json.loads(line)) == {"id", "custom_id", "response", "error"}

    # Followed from where the partial response reached: the rest, each once, until the end.
    rest = _lines(_results(client, batch_id, follow="true", after_part=reached))
    assert client.batches.retrieve(batch_id).status == "completed"
    custom_ids = [json.loads(line)["custom_id"] for line in so_far + rest]
    assert sorted(custom_ids) == sorted(f"r{i}" for i in range(COUNT))
    # A follower that broke off after 3 lines resumes with skip_lines.
    resumed = _results(client, batch_id, follow="true", after_part=reached, skip_lines="3")
    assert _lines(resumed) == rest[3:]

    batch = wait_until_done(client, batch_id)
    assert batch.output_file_id and batch.error_file_id
    whole = _results(client, batch_id)
    assert "batchgate-last-part" not in whole.headers
    assert sorted(_lines(whole)) == sorted(so_far + rest)
    for lines, file_id in (("output", batch.output_file_id), ("error", batch.error_file_id)):
        in_file = client.files.content(file_id).read().splitlines()
        assert sorted(_lines(_results(client, batch_id, lines=lines))) == sorted(in_file)
        partial = _lines(_results(client, batch_id, partial="true", lines=lines))
        assert sorted(partial) == sorted(in_file)
    assert len(_lines(_results(client, batch_id, lines="error"))) == batch.request_counts.failed  # type: ignore[union-attr]


def test_bad_queries_and_failed_or_unknown_batches_are_refused(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    client = openai_client(start_server())
    batch_id = create_chat_batch(client, tmp_path / "in.jsonl", [chat_line("a", "Hi")]).id
    for params, param in (
        ({"lines": "both"}, "lines"),
        ({"partial": "maybe"}, None),
        ({"after_part": "-1"}, "after_part"),
        ({"skip_lines": "x"}, "skip_lines"),
    ):
        with pytest.raises(openai.BadRequestError) as refused:
            _results(client, batch_id, **params)
        assert refused.value.param == param
        assert refused.value.type == "invalid_request_error"
    failed = create_chat_batch(
        client, tmp_path / "bad.jsonl", [chat_line("same", "Hi"), chat_line("same", "Hi")]
    ).id
    with pytest.raises(openai.BadRequestError) as refused:
        _results(client, failed, partial="true")
    assert "failed" in refused.value.message
    with pytest.raises(openai.NotFoundError):
        _results(client, "batch_nothing", partial="true")
    # A Message Batch's id is not an OpenAI batch.
    with pytest.raises(openai.NotFoundError):
        _results(client, "msgbatch_nothing", partial="true")
