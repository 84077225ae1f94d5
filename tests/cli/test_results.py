"""`batchgate results`: the API's JSONL as sent, filtered by type, or as custom_id<TAB>text."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from batchgate.cli.client.results import text_line
from cli.conftest import Cli, read_jsonl
from conftest import KEY, Server, simple_request, wait_until_ended


@pytest.fixture(scope="module")
def ended_batch(server: Server) -> str:
    client = server.client()
    batch = client.messages.batches.create(
        requests=[
            simple_request("a", "alpha"),  # type: ignore[list-item]
            simple_request("b", "beta"),  # type: ignore[list-item]
            simple_request("bad", stream=True),  # type: ignore[list-item]
        ]
    )
    return wait_until_ended(client, batch.id).id


def test_results_are_streamed_exactly_as_the_api_sends_them(
    cli: Cli, server: Server, ended_batch: str
) -> None:
    fetched = cli("results", ended_batch)

    assert fetched.exit_code == 0, fetched.output
    sent = httpx.get(
        f"{server.base_url}/v1/messages/batches/{ended_batch}/results", headers={"x-api-key": KEY}
    )
    assert fetched.stdout_bytes == sent.content


def test_type_keeps_only_results_of_those_types(cli: Cli, ended_batch: str) -> None:
    errored = cli("results", ended_batch, "--type", "errored")
    both = cli("results", ended_batch, "--type", "errored", "--type", "succeeded")

    assert [line["custom_id"] for line in read_jsonl(errored.stdout)] == ["bad"]
    assert sorted(line["custom_id"] for line in read_jsonl(both.stdout)) == ["a", "b", "bad"]
    assert cli("results", ended_batch, "--type", "nonsense").exit_code == 2


def test_text_prints_custom_id_tab_first_text_block_to_a_file(
    cli: Cli, ended_batch: str, tmp_path: Path
) -> None:
    output = tmp_path / "answers.tsv"

    fetched = cli("results", ended_batch, "--text", "-o", str(output))

    assert fetched.exit_code == 0, fetched.output
    assert f"Wrote 3 results to {output}" in fetched.stderr
    lines = dict(line.split("\t") for line in output.read_text().splitlines())
    assert lines["a"] == "You said: alpha"
    assert lines["b"] == "You said: beta"
    assert lines["bad"].startswith("[errored] invalid_request_error: stream")


def test_results_of_a_running_batch_exit_2(slow_server: Server) -> None:
    client = slow_server.client()
    batch = client.messages.batches.create(
        requests=[simple_request(f"r{i}") for i in range(20)]  # type: ignore[misc]
    )

    fetched = Cli(slow_server.base_url)("results", batch.id)

    assert fetched.exit_code == 2
    assert f"{batch.id} has not ended yet (in_progress)" in fetched.stderr
    client.messages.batches.cancel(batch.id)


def test_text_lines_escape_what_would_break_them() -> None:
    succeeded = {
        "custom_id": "multi",
        "result": {
            "type": "succeeded",
            "message": {
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
                    {"type": "text", "text": "line one\nline\ttwo \\ end"},
                ]
            },
        },
    }
    tool_only = {
        "custom_id": "tool",
        "result": {"type": "succeeded", "message": {"content": [{"type": "tool_use"}]}},
    }
    expired = {"custom_id": "late", "result": {"type": "expired"}}

    assert text_line(succeeded) == "multi\tline one\\nline\\ttwo \\\\ end"
    assert text_line(tool_only) == "tool\t"
    assert text_line(expired) == "late\t[expired]"


def test_a_reader_that_stops_early_ends_the_stream_quietly(server: Server) -> None:
    client = server.client()
    batch = client.messages.batches.create(
        requests=[simple_request(f"r{i}", "word " * 50) for i in range(1500)]  # type: ignore[misc]
    )
    wait_until_ended(client, batch.id)
    environment = {**os.environ, "ANTHROPIC_BASE_URL": server.base_url, "ANTHROPIC_API_KEY": KEY}
    reader = subprocess.Popen(
        [sys.executable, "-m", "batchgate", "results", batch.id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
    )
    assert reader.stdout is not None and reader.stderr is not None
    assert reader.stdout.readline().startswith(b'{"custom_id"')
    reader.stdout.close()  # as `| head -1` does
    assert reader.wait(timeout=60) == 0
    assert b"BrokenPipe" not in reader.stderr.read()
