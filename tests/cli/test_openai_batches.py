"""The client commands on OpenAI batches (`batch_…` ids), through the `openai` SDK against a real
server: status, ls --format openai, cancel, results (--type, --text, --merged) and retry with its
filters; and retry's filters on Message Batches."""

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types import Batch

from cli.conftest import Cli, batch_ids, read_jsonl
from conftest import Server, simple_request, wait_until_ended
from openai_batches.conftest import chat_line, create_chat_batch, openai_client, wait_until_done

LINES = [chat_line(f"r{i}", f"question {i}") for i in range(40)]


@pytest.fixture(scope="module")
def failing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Fails about half the requests, always the same ones (faults follow the params), with a
    rate limit (429) or a server error (500)."""
    server = Server(
        tmp_path_factory.mktemp("failing"),
        simulator_fault_rate="0.5",
        simulator_fault_types="rate_limit_error,api_error",
    ).start()
    yield server
    server.stop()


def _ended_batch(server: Server, path: Path) -> Batch:
    client = openai_client(server)
    batch = wait_until_done(client, create_chat_batch(client, path, LINES).id)
    assert batch.status == "completed" and batch.request_counts is not None
    assert 0 < batch.request_counts.failed < len(LINES)
    return batch


@pytest.fixture(scope="module")
def ended(failing_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Batch:
    """An ended OpenAI batch, some of its requests failed; never retried."""
    return _ended_batch(failing_server, tmp_path_factory.mktemp("ended") / "in.jsonl")


def _file_lines(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    return read_jsonl(client.files.content(file_id).text)


def _status(line: dict[str, Any]) -> int:
    return int(line["response"]["status_code"])


def test_status_shows_an_openai_batch_and_its_json(failing_server: Server, ended: Batch) -> None:
    cli = Cli(failing_server.base_url)
    assert ended.request_counts is not None

    shown = cli("status", ended.id)
    as_json = cli("status", ended.id, "--json")
    waited = cli("status", ended.id, "--wait", "--interval", "0.05")

    assert shown.exit_code == 0, shown.output
    assert "completed" in shown.stdout and ended.error_file_id in shown.stdout
    failed, completed = ended.request_counts.failed, ended.request_counts.completed
    assert f"{completed} completed · {failed} failed" in shown.stdout
    assert json.loads(as_json.stdout)["request_counts"] == ended.request_counts.to_dict()
    # Ended with failed requests: exit 1, and the command that retries them.
    assert waited.exit_code == 1, waited.output
    assert f"batchgate retry {ended.id}" in waited.stderr


def test_ls_format_openai_lists_openai_batches(failing_server: Server, ended: Batch) -> None:
    listed = Cli(failing_server.base_url)("ls", "--format", "openai", "--all", "--json")

    assert listed.exit_code == 0, listed.output
    assert ended.id in [batch["id"] for batch in json.loads(listed.stdout)]
    refused = Cli(failing_server.base_url)("ls", "--format", "openai", "--status", "ended")
    assert refused.exit_code == 2
    assert "--status does not apply to --format openai" in refused.stderr


def test_results_are_the_output_and_error_lines_by_type(
    failing_server: Server, ended: Batch
) -> None:
    cli = Cli(failing_server.base_url)
    client = openai_client(failing_server)
    output = _file_lines(client, ended.output_file_id)
    errors = _file_lines(client, ended.error_file_id)

    every = read_jsonl(cli("results", ended.id).stdout)
    succeeded = read_jsonl(cli("results", ended.id, "--type", "succeeded").stdout)
    errored = read_jsonl(cli("results", ended.id, "--type", "errored").stdout)
    text = cli("results", ended.id, "--text").stdout.splitlines()

    assert every == output + errors
    assert succeeded == output
    assert errored == errors and {_status(line) for line in errored} == {429, 500}
    first = output[0]
    assert f"{first['custom_id']}\tYou said: question {first['custom_id'][1:]}" in text
    assert any(line.endswith("[errored] rate_limit_error: Simulated rate_limit_error from the"
                             " batchgate simulator.") for line in text)  # fmt: skip


def test_retry_by_status_code_then_merged_results(failing_server: Server, tmp_path: Path) -> None:
    cli = Cli(failing_server.base_url)
    client = openai_client(failing_server)
    parent = _ended_batch(failing_server, tmp_path / "in.jsonl")
    rate_limited = {
        line["custom_id"]
        for line in _file_lines(client, parent.error_file_id)
        if _status(line) == 429
    }
    assert rate_limited

    retried = cli("retry", parent.id, "--status-code", "429")

    assert retried.exit_code == 0, retried.output
    [child_id] = retried.stdout.split()
    child = client.batches.retrieve(child_id)
    assert child.model_extra is not None and child.model_extra["parent_batch_id"] == parent.id
    child_input = _file_lines(client, child.input_file_id)
    assert {line["custom_id"] for line in child_input} == rate_limited
    child = wait_until_done(client, child_id)

    merged = read_jsonl(cli("results", parent.id, "--merged").stdout)
    merged_errors = read_jsonl(cli("results", parent.id, "--merged", "--type", "errored").stdout)

    # One line a request, its latest attempt: the retry's for the rate-limited ones, which fail
    # again (faults follow the params).
    assert sorted(line["custom_id"] for line in merged) == sorted(
        line["custom_id"] for line in LINES
    )
    child_lines = {line["custom_id"]: line for line in _file_lines(client, child.error_file_id)}
    assert [line for line in merged if line["custom_id"] in rate_limited] == [
        child_lines[custom_id] for custom_id in sorted(rate_limited, key=list(child_lines).index)
    ]
    assert {line["custom_id"] for line in merged_errors} == {
        line["custom_id"] for line in merged if _status(line) >= 400
    }
    # A batch is retried once: its retry is the one to retry next.
    again = cli("retry", parent.id)
    assert again.exit_code == 2
    assert "retry its retry batch instead" in again.stderr


def test_retry_by_error_type_with_wait_writes_the_retrys_lines(
    failing_server: Server, tmp_path: Path
) -> None:
    cli = Cli(failing_server.base_url)
    client = openai_client(failing_server)
    parent = _ended_batch(failing_server, tmp_path / "in.jsonl")
    server_errors = {
        line["custom_id"]
        for line in _file_lines(client, parent.error_file_id)
        if _status(line) == 500
    }
    output = tmp_path / "retried.jsonl"

    retried = cli(
        "retry", parent.id, "--status-code", "5xx", "--error-type", "api_error", "--no-cancelled",
        "--wait", "--interval", "0.05", "-o", str(output),
    )  # fmt: skip

    assert retried.exit_code == 1, retried.output
    assert {line["custom_id"] for line in read_jsonl(output.read_text())} == server_errors
    assert f"Wrote {len(server_errors)} results to {output}." in retried.stderr


def test_retry_refuses_what_does_not_apply_and_bad_filters_create_nothing(
    failing_server: Server, ended: Batch
) -> None:
    cli = Cli(failing_server.base_url)
    client = openai_client(failing_server)
    before = [batch.id for batch in client.batches.list(limit=100)]

    wrong_format = cli("retry", ended.id, "--type", "errored")
    with_a_file = cli("retry", ended.id, "--from", __file__)
    wrong_way = cli("retry", "msgbatch_0000000000000000000000000", "--status-code", "429")
    bad_code = cli("retry", ended.id, "--status-code", "600")
    nothing = cli("retry", ended.id, "--status-code", "404")

    assert wrong_format.exit_code == 2
    assert f"--type does not apply to {ended.id}: only to Message Batches" in wrong_format.stderr
    assert with_a_file.exit_code == 2
    assert f"--from does not apply to {ended.id}" in with_a_file.stderr
    assert wrong_way.exit_code == 2
    assert "--status-code does not apply" in wrong_way.stderr
    assert bad_code.exit_code == 2
    assert "status_codes: each must be an HTTP status code" in bad_code.stderr
    assert nothing.exit_code == 2
    assert "there is nothing to retry" in nothing.stderr
    assert [batch.id for batch in client.batches.list(limit=100)] == before
    assert client.batches.retrieve(ended.id).model_extra == {}


def test_cancel_an_openai_batch(slow_server: Server, tmp_path: Path) -> None:
    client = openai_client(slow_server)
    batch = create_chat_batch(client, tmp_path / "in.jsonl", LINES)

    cancelled = Cli(slow_server.base_url)("cancel", batch.id)

    assert cancelled.exit_code == 0, cancelled.output
    assert cancelled.stdout.strip() == f"{batch.id} is cancelling."
    assert wait_until_done(client, batch.id).status == "cancelled"
    again = Cli(slow_server.base_url)("cancel", batch.id)
    assert again.exit_code == 2 and again.stderr.startswith("error: ")


def test_a_message_batch_retry_by_type_and_error_type(failing_server: Server) -> None:
    client = failing_server.client()
    requests = [simple_request(f"m{i}", f"question {i}") for i in range(40)]
    batch = wait_until_ended(client, client.messages.batches.create(requests=requests).id)  # type: ignore[arg-type]
    results = list(client.messages.batches.results(batch.id))
    rate_limited = {
        result.custom_id
        for result in results
        if result.result.type == "errored" and result.result.error.error.type == "rate_limit_error"
    }
    assert rate_limited

    retried = Cli(failing_server.base_url)(
        "retry", batch.id, "--type", "errored", "--error-type", "rate_limit_error"
    )

    assert retried.exit_code == 0, retried.output
    [child_id] = batch_ids(retried.stdout)
    child = wait_until_ended(client, child_id)
    assert {result.custom_id for result in client.messages.batches.results(child.id)} == (
        rate_limited
    )


def test_results_follow_an_openai_batch_while_it_runs(slow_server: Server, tmp_path: Path) -> None:
    client = openai_client(slow_server)
    batch = create_chat_batch(client, tmp_path / "in.jsonl", LINES[:8])

    followed = Cli(slow_server.base_url)("results", batch.id, "--follow", "--text")

    assert followed.exit_code == 0, followed.output
    assert sorted(followed.stdout.splitlines()) == sorted(
        f"{line['custom_id']}\tYou said: {line['body']['messages'][-1]['content']}"
        for line in LINES[:8]
    )
    assert client.batches.retrieve(batch.id).status == "completed"


def test_status_wait_follows_a_running_openai_batch_by_its_events(
    slow_server: Server, tmp_path: Path
) -> None:
    client = openai_client(slow_server)
    batch = create_chat_batch(client, tmp_path / "in.jsonl", LINES[:8])
    started = time.monotonic()

    # An interval longer than the batch: only its events can wake the watcher in time.
    waited = Cli(slow_server.base_url)("status", batch.id, "--wait", "--interval", "30")

    assert waited.exit_code == 0, waited.output
    assert time.monotonic() - started < 10
    assert "8 completed · 0 failed" in waited.stdout
    assert client.batches.retrieve(batch.id).status == "completed"


def test_a_batch_that_failed_its_checks_has_no_results_and_says_why(
    failing_server: Server, tmp_path: Path
) -> None:
    cli = Cli(failing_server.base_url)
    client = openai_client(failing_server)
    batch = create_chat_batch(client, tmp_path / "bad.jsonl", [LINES[0], LINES[0]])
    assert batch.status == "failed"

    shown = cli("status", batch.id)
    fetched = cli("results", batch.id)

    assert shown.exit_code == 0, shown.output
    assert "line 2: duplicate_custom_id" in shown.stdout
    assert fetched.exit_code == 2
    assert f"{batch.id} failed its input file's checks and ran nothing" in fetched.stderr
