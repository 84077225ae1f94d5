"""`batchgate submit`: input checked line by line, split over the limits, --wait to the results."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from cli.conftest import Cli, batch_ids, read_jsonl, write_jsonl
from conftest import KEY, Server, simple_request, wait_until_ended

CLIENT_APP = Path(__file__).parent / "client_app.py"


def test_wait_follows_the_batch_and_writes_its_results(cli: Cli, tmp_path: Path) -> None:
    source = write_jsonl(
        tmp_path / "requests.jsonl", [simple_request(f"r{i}", f"question {i}") for i in range(5)]
    )
    output = tmp_path / "results.jsonl"

    submitted = cli("submit", str(source), "--wait", "--interval", "0.05", "-o", str(output))

    assert submitted.exit_code == 0, submitted.output
    results = {line["custom_id"]: line["result"] for line in read_jsonl(output.read_text())}
    assert sorted(results) == [f"r{i}" for i in range(5)]
    assert results["r3"]["message"]["content"][0]["text"] == "You said: question 3"
    assert "5/5" in submitted.stderr and "5 succeeded · 0 errored" in submitted.stderr
    assert f"Wrote 5 results to {output}" in submitted.stderr
    assert submitted.stdout == ""


def test_wait_exits_1_when_requests_errored_and_streams_results_to_stdout(
    cli: Cli, tmp_path: Path
) -> None:
    # Locally valid; the server errors it when it runs (a batch request cannot stream).
    streaming = simple_request("streaming", stream=True)
    source = write_jsonl(tmp_path / "requests.jsonl", [simple_request("fine"), streaming])

    submitted = cli("submit", str(source), "--wait", "--interval", "0.05")

    assert submitted.exit_code == 1, submitted.output
    types = {line["custom_id"]: line["result"]["type"] for line in read_jsonl(submitted.stdout)}
    assert types == {"fine": "succeeded", "streaming": "errored"}
    [batch_id] = set(batch_ids(submitted.stderr))
    assert f"batchgate retry {batch_id}" in submitted.stderr


def test_plain_prompts_become_requests_named_after_their_line(
    cli: Cli, server: Server, tmp_path: Path
) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("What is AI?\n\nWhat is ML?\n")

    submitted = cli(
        "submit", str(prompts), "--model", "claude-sonnet-4-5-20250929", "--max-tokens", "64"
    )

    assert submitted.exit_code == 0, submitted.output
    [batch_id] = submitted.stdout.split()
    client = server.client()
    assert wait_until_ended(client, batch_id).request_counts.succeeded == 2
    texts = {
        response.custom_id: response.result.message.content[0].text  # type: ignore[union-attr]
        for response in client.messages.batches.results(batch_id)
    }
    assert texts == {"line-1": "You said: What is AI?", "line-3": "You said: What is ML?"}


def test_bad_lines_are_reported_with_their_numbers_and_nothing_is_sent(
    cli: Cli, server: Server, tmp_path: Path
) -> None:
    source = tmp_path / "requests.jsonl"
    lines = [
        orjson.dumps(simple_request("ok")),
        b'{"custom_id": "broken", ',
        orjson.dumps(simple_request("has space")),
        orjson.dumps(simple_request("ok")),
        b"",
        orjson.dumps({"custom_id": "no-params"}),
        orjson.dumps(simple_request("zero", max_tokens=0)),
        orjson.dumps({**simple_request("extra"), "metadata": {}}),
        orjson.dumps(["not", "an", "object"]),
        orjson.dumps(simple_request("no-model", model="")),
        orjson.dumps({"custom_id": "no-messages", "params": {"model": "m", "max_tokens": 5}}),
    ]
    source.write_bytes(b"\n".join(lines) + b"\n")
    newest_before = server.client().messages.batches.list(limit=1).data

    submitted = cli("submit", str(source))

    assert submitted.exit_code == 2
    report = submitted.stderr
    assert "9 invalid line(s)" in report and "nothing was sent" in report
    for expected in (
        "line 2: not valid JSON",
        "line 3: custom_id 'has space' must be 1-64 letters, digits, '_' or '-'",
        "line 4: custom_id 'ok' repeats line 1",
        "line 6: params must be an object",
        "line 7: params.max_tokens must be a whole number of at least 1",
        "line 8: unexpected key 'metadata'",
        "line 9: expected an object",
        "line 10: params.model must be a non-empty string",
        "line 11: params.messages must be a non-empty array",
    ):
        assert expected in report
    assert "line 1:" not in report and "line 5:" not in report
    assert server.client().messages.batches.list(limit=1).data == newest_before
    assert not (tmp_path / "requests.rejected.jsonl").exists()


def test_skip_invalid_submits_the_valid_lines_and_writes_the_others_to_fix(
    cli: Cli, server: Server, tmp_path: Path
) -> None:
    no_max_tokens = {"custom_id": "no-max-tokens", "params": {"model": "m", "messages": ["hi"]}}
    lines = [
        orjson.dumps(simple_request("a")),
        b'{"custom_id": "broken", ',
        orjson.dumps(no_max_tokens),
        orjson.dumps(simple_request("b")),
        b"",
        orjson.dumps(simple_request("a", "again")),
        orjson.dumps(simple_request("c")),
    ]
    source = tmp_path / "requests.jsonl"
    source.write_bytes(b"\r\n".join(lines) + b"\r\n")

    submitted = cli("submit", str(source), "--skip-invalid")

    assert submitted.exit_code == 3, submitted.output
    rejected_path = tmp_path / "requests.rejected.jsonl"
    assert f"Skipping 3 invalid line(s) of {source}" in submitted.stderr
    assert str(rejected_path) in submitted.stderr
    rejected = read_jsonl(rejected_path.read_text())
    assert [(line["line"], line["text"].encode()) for line in rejected] == [
        (2, lines[1]),
        (3, lines[2]),
        (6, lines[5]),
    ]
    assert rejected[0]["reason"].startswith("not valid JSON")
    assert rejected[1]["reason"] == "params.max_tokens must be a whole number of at least 1"
    assert rejected[2]["reason"] == "custom_id 'a' repeats line 1"
    [batch_id] = submitted.stdout.split()
    client = server.client()
    assert wait_until_ended(client, batch_id).request_counts.succeeded == 3
    sent = {response.custom_id for response in client.messages.batches.results(batch_id)}
    assert sent == {"a", "b", "c"}

    # Fixed, the rejected lines make a file of their own to submit.
    fixed = [orjson.loads(line["text"]) for line in rejected[1:]]
    fixed[0]["params"]["max_tokens"] = 64
    fixed[1]["custom_id"] = "a2"
    resubmitted = cli("submit", str(write_jsonl(tmp_path / "fixed.jsonl", fixed)))
    assert resubmitted.exit_code == 0, resubmitted.output


@pytest.mark.parametrize(
    ("extra", "exit_code"),
    [
        ([], 3),  # all sent requests succeeded: the exit code says lines were skipped
        ([simple_request("streaming", stream=True)], 1),  # errored requests come first
    ],
)
def test_skip_invalid_with_wait_writes_the_results_of_the_valid_lines(
    cli: Cli, tmp_path: Path, extra: list[dict[str, object]], exit_code: int
) -> None:
    source = write_jsonl(
        tmp_path / "requests.jsonl", [simple_request("fine"), {"custom_id": "bad"}, *extra]
    )
    output = tmp_path / "results.jsonl"

    submitted = cli(
        "submit", str(source), "--skip-invalid", "--wait", "--interval", "0.05", "-o", str(output)
    )

    assert submitted.exit_code == exit_code, submitted.output
    results = {line["custom_id"] for line in read_jsonl(output.read_text())}
    assert results == {"fine"} | {request["custom_id"] for request in extra}
    assert [
        line["line"] for line in read_jsonl((tmp_path / "requests.rejected.jsonl").read_text())
    ] == [2]


def test_skip_invalid_sends_nothing_without_a_valid_line_or_a_place_for_the_rejected(
    cli: Cli, server: Server, tmp_path: Path
) -> None:
    newest_before = server.client().messages.batches.list(limit=1).data
    all_bad = write_jsonl(tmp_path / "bad.jsonl", [{"custom_id": "x"}, {"custom_id": "y"}])
    unwritable = write_jsonl(tmp_path / "requests.jsonl", [simple_request("a"), {"custom_id": "x"}])
    (tmp_path / "requests.rejected.jsonl").mkdir()

    nothing_valid = cli("submit", str(all_bad), "--skip-invalid")
    no_place = cli("submit", str(unwritable), "--skip-invalid")

    assert nothing_valid.exit_code == 2
    assert "holds no valid requests; nothing was sent" in nothing_valid.stderr
    assert len(read_jsonl((tmp_path / "bad.rejected.jsonl").read_text())) == 2
    assert no_place.exit_code == 2
    assert "cannot write the invalid lines" in no_place.stderr
    assert server.client().messages.batches.list(limit=1).data == newest_before


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--model", "m"], "plain prompts need both --model and --max-tokens"),
        (["-o", "out.jsonl"], "--output goes with --wait"),
    ],
)
def test_usage_errors_exit_2(cli: Cli, tmp_path: Path, arguments: list[str], message: str) -> None:
    source = write_jsonl(tmp_path / "requests.jsonl", [simple_request("a")])
    submitted = cli("submit", str(source), *arguments)
    assert submitted.exit_code == 2
    assert message in submitted.stderr


def test_an_empty_or_missing_file_exits_2(cli: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    assert cli("submit", str(empty)).exit_code == 2
    assert cli("submit", str(tmp_path / "missing.jsonl")).exit_code == 2


def test_over_100000_requests_are_split_into_batches(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = start_server()
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("hi\n" * 120_000)

    submitted = Cli(server.base_url)("submit", str(prompts), "--model", "m", "--max-tokens", "1")

    assert submitted.exit_code == 0, submitted.output
    assert "submitting 2 batches" in submitted.stderr
    first, second = submitted.stdout.split()
    client = server.client()
    ended = [wait_until_ended(client, batch_id) for batch_id in (first, second)]
    assert [batch.request_counts.succeeded for batch in ended] == [100_000, 20_000]


def test_ctrl_c_while_waiting_leaves_the_batch_running(slow_server: Server, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "requests.jsonl", [simple_request(f"r{i}") for i in range(200)])
    watching = subprocess.Popen(
        [sys.executable, str(CLIENT_APP), "submit", str(source), "--wait", "--interval", "0.1"],
        env={**os.environ, "ANTHROPIC_BASE_URL": slow_server.base_url, "ANTHROPIC_API_KEY": KEY},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell that started the test run in the background may have SIGINT ignored, and a
        # child inherits that; the command must see Ctrl-C as a terminal would deliver it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert watching.stderr is not None
    [batch_id] = batch_ids(watching.stderr.readline())
    time.sleep(0.5)  # well into watching: the batch needs 20 s

    watching.send_signal(signal.SIGINT)
    _, stderr = watching.communicate(timeout=30)

    assert watching.returncode == 130, stderr
    assert f"batchgate status {batch_id} --wait" in stderr
    client = slow_server.client()
    assert client.messages.batches.retrieve(batch_id).processing_status == "in_progress"
    client.messages.batches.cancel(batch_id)
