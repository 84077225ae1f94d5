"""What the OpenAI Batch API refuses, with the `openai` SDK: bad input files (a failed batch
naming the lines), files over the limit, other workspaces, read-only keys; in OpenAI's error
envelope and never a 409 for a wrong state."""

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest

from conftest import Server
from key_commands import create_key
from openai_batches.conftest import chat_line, jsonl, openai_client, wait_until_done, write_jsonl


def upload(client: openai.OpenAI, path: Path) -> str:
    with path.open("rb") as file:
        return client.files.create(file=file, purpose="batch").id


def test_a_bad_input_file_makes_a_failed_batch_naming_its_lines(
    tmp_path: Path, start_on_store: Callable[..., Server]
) -> None:
    client = openai_client(start_on_store())
    good = chat_line("a", "Hi")
    path = tmp_path / "bad.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps(good),
                '{"custom_id": "b", "method": "POST", "url": ',  # cut short
                json.dumps(good),  # custom_id "a" again
                json.dumps({**chat_line("c", "Hi"), "url": "/v1/embeddings"}),
                json.dumps({**chat_line("d", "Hi"), "method": "GET"}),
                json.dumps(chat_line("e", "Hi", model="another-model")),
                json.dumps(chat_line("f", "Hi")),
                json.dumps({**chat_line("g", "Hi"), "custom_id": 7}),
                json.dumps({key: value for key, value in good.items() if key != "url"}),
                json.dumps({**chat_line("h", "Hi"), "body": {"messages": []}}),
                json.dumps({**chat_line("i", "Hi"), "body": {"model": ["gpt-4o-mini"]}}),
            ]
        )
        + "\n"
    )
    batch = client.batches.create(
        input_file_id=upload(client, path),
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    assert batch.status == "failed" and batch.failed_at is not None
    assert batch.errors is not None and batch.errors.data is not None
    found = [(error.line, error.code, error.param) for error in batch.errors.data]
    # Each names the field to blame where one is; a line that is not JSON has none.
    assert found == [
        (2, "invalid_json_line", None),
        (3, "duplicate_custom_id", "custom_id"),
        (4, "mismatched_url", "url"),
        (5, "invalid_method", "method"),
        (6, "mismatched_model", "body.model"),
        (8, "invalid_json_line", "custom_id"),
        (9, "invalid_json_line", "url"),
        (10, "invalid_body", "body.model"),
        (11, "invalid_body", "body.model"),
    ]
    assert all(error.message for error in batch.errors.data)
    assert batch.output_file_id is None and batch.error_file_id is None
    # Nothing runs, and it stays failed.
    assert client.batches.retrieve(batch.id).status == "failed"
    with pytest.raises(openai.BadRequestError):
        client.batches.cancel(batch.id)


def test_an_empty_file_or_a_wrong_argument_is_refused(
    tmp_path: Path, start_on_store: Callable[..., Server]
) -> None:
    client = openai_client(start_on_store())
    empty = upload(client, write_jsonl(tmp_path / "empty.jsonl", []))
    failed = client.batches.create(
        input_file_id=empty, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert failed.status == "failed" and failed.errors is not None
    assert [error.code for error in failed.errors.data or []] == ["empty_file"]

    good = upload(client, write_jsonl(tmp_path / "good.jsonl", [chat_line("a", "Hi")]))
    for arguments in (
        {"endpoint": "/v1/completions", "completion_window": "24h"},
        {"endpoint": "/v1/chat/completions", "completion_window": "1h"},
    ):
        with pytest.raises(openai.BadRequestError) as refused:
            client.batches.create(input_file_id=good, **arguments)  # type: ignore[arg-type]
        assert refused.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        client.batches.create(
            input_file_id="file-nothing", endpoint="/v1/chat/completions", completion_window="24h"
        )


def test_a_file_over_the_limit_is_refused_with_413(
    tmp_path: Path, start_on_store: Callable[..., Server]
) -> None:
    client = openai_client(start_on_store(openai_max_file_bytes="1000"))
    path = write_jsonl(tmp_path / "big.jsonl", [chat_line(f"r{i}", "x" * 100) for i in range(20)])
    with pytest.raises(openai.APIStatusError) as refused:
        upload(client, path)
    assert refused.value.status_code == 413
    assert "1000 bytes" in refused.value.body["message"]  # type: ignore[index]
    assert list(client.files.list()) == []


def test_a_non_multipart_upload_gets_openais_error_envelope(
    start_on_store: Callable[..., Server],
) -> None:
    server = start_on_store()
    answer = httpx.post(f"{server.base_url}/v1/files", json={"purpose": "batch"})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"


def test_workspaces_see_only_their_own_files_and_batches_and_read_only_keys_change_nothing(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    url = f"sqlite:///{tmp_path / 'batchgate.db'}"
    blue, red = create_key(url, "blue"), create_key(url, "red")
    viewer = create_key(url, "blue", read_only=True)
    server = start_server(database_url=url)
    owner, other = openai_client(server, blue.key), openai_client(server, red.key)
    reader = openai_client(server, viewer.key)
    path = write_jsonl(tmp_path / "in.jsonl", [chat_line("a", "Hi")])
    file_id = upload(owner, path)
    batch = owner.batches.create(
        input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    ended = wait_until_done(owner, batch.id)
    assert ended.output_file_id is not None

    for call in (
        lambda: other.files.retrieve(file_id),
        lambda: other.files.content(file_id),
        lambda: other.files.content(ended.output_file_id or ""),
        lambda: other.batches.retrieve(batch.id),
        lambda: other.batches.cancel(batch.id),
        lambda: other.post(f"/batches/{batch.id}/retry", cast_to=httpx.Response),
        lambda: other.get(
            f"/batches/{batch.id}/results", cast_to=httpx.Response, options={"params": {}}
        ),
        lambda: other.get(f"/batches/{batch.id}/events", cast_to=httpx.Response),
        lambda: other.batches.create(
            input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
        ),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert list(other.files.list()) == [] and list(other.batches.list()) == []

    assert reader.batches.retrieve(batch.id).status == "completed"
    assert [
        line["custom_id"] for line in jsonl(reader.files.content(ended.output_file_id).text)
    ] == ["a"]
    for call in (
        lambda: upload(reader, path),
        lambda: reader.files.delete(file_id),
        lambda: reader.batches.create(
            input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
        ),
        lambda: reader.batches.cancel(batch.id),
        lambda: reader.post(f"/batches/{batch.id}/retry", cast_to=httpx.Response),
    ):
        with pytest.raises(openai.PermissionDeniedError) as refused:
            call()
        assert "read-only" in refused.value.message
    assert [file.id for file in owner.files.list(purpose="batch")] == [file_id]
