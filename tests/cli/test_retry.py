"""`batchgate retry`: a new batch of the errored and expired requests of an ended batch."""

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.conftest import Cli, batch_ids, read_jsonl, write_jsonl
from conftest import KEY, Server, simple_request, wait_until_ended

REQUESTS = [simple_request(f"r{i}", f"question {i}") for i in range(30)]


@pytest.fixture(scope="module")
def failed_batch(faulty_server: Server, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A batch of REQUESTS on the faulty server, some of them errored."""
    client = faulty_server.client()
    batch = client.messages.batches.create(requests=REQUESTS)  # type: ignore[arg-type]
    return wait_until_ended(client, batch.id).id


def errored_ids(results: list[dict[str, Any]]) -> set[str]:
    return {line["custom_id"] for line in results if line["result"]["type"] == "errored"}


def submitted_requests(server: Server, batch_id: str) -> dict[str, object]:
    lines = httpx.get(
        f"{server.base_url}/v1/messages/batches/{batch_id}/requests", headers={"x-api-key": KEY}
    ).text
    return {line["custom_id"]: line["params"] for line in read_jsonl(lines)}


def test_retry_resubmits_exactly_the_errored_requests(
    faulty_server: Server, failed_batch: str, tmp_path: Path
) -> None:
    cli = Cli(faulty_server.base_url)
    first = read_jsonl(cli("results", failed_batch).stdout)
    errored = errored_ids(first)
    assert 0 < len(errored) < len(REQUESTS)
    output = tmp_path / "retried.jsonl"

    retried = cli("retry", failed_batch, "--wait", "--interval", "0.05", "-o", str(output))

    # The simulator fails a request by its params, so the same requests fail again.
    assert retried.exit_code == 1, retried.output
    assert errored_ids(read_jsonl(output.read_text())) == errored
    [new_batch] = set(batch_ids(retried.stderr)) - {failed_batch}
    originals = {request["custom_id"]: request["params"] for request in REQUESTS}
    assert submitted_requests(faulty_server, new_batch) == {
        custom_id: originals[custom_id] for custom_id in errored
    }


def test_retry_from_the_original_file_picks_the_same_requests(
    faulty_server: Server, failed_batch: str, tmp_path: Path
) -> None:
    cli = Cli(faulty_server.base_url)
    source = write_jsonl(tmp_path / "requests.jsonl", list(REQUESTS))
    errored = errored_ids(read_jsonl(cli("results", failed_batch).stdout))

    retried = cli("retry", failed_batch, "--from", str(source))

    assert retried.exit_code == 0, retried.output
    [new_batch] = retried.stdout.split()
    assert set(submitted_requests(faulty_server, new_batch)) == errored


def test_retry_from_a_file_without_the_failed_requests_exits_2(
    faulty_server: Server, failed_batch: str, tmp_path: Path
) -> None:
    other = write_jsonl(tmp_path / "other.jsonl", [simple_request("unrelated")])

    retried = Cli(faulty_server.base_url)("retry", failed_batch, "--from", str(other))

    assert retried.exit_code == 2
    assert "is it the file the batch was submitted from?" in retried.stderr


def test_nothing_to_retry_submits_nothing(cli: Cli, server: Server) -> None:
    client = server.client()
    batch = client.messages.batches.create(requests=[simple_request("fine")])  # type: ignore[list-item]
    wait_until_ended(client, batch.id)

    retried = cli("retry", batch.id)

    assert retried.exit_code == 0
    assert retried.stdout == ""
    assert f"Nothing to retry: {batch.id}" in retried.stderr
    assert client.messages.batches.list(limit=1).data[0].id == batch.id


def test_retry_of_a_running_batch_exits_2(slow_server: Server) -> None:
    client = slow_server.client()
    batch = client.messages.batches.create(
        requests=[simple_request(f"r{i}") for i in range(20)]  # type: ignore[misc]
    )

    retried = Cli(slow_server.base_url)("retry", batch.id)

    assert retried.exit_code == 2
    assert "has not ended yet" in retried.stderr
    client.messages.batches.cancel(batch.id)


def test_without_the_requests_endpoint_retry_asks_for_the_file(
    start_server: Callable[..., Server],
) -> None:
    # An archived batch answers 404 on /requests, as Anthropic's API does for every batch.
    server = start_server(simulator_fault_rate="1", retention_seconds="1")
    client = server.client()
    batch = client.messages.batches.create(requests=[simple_request("doomed")])  # type: ignore[list-item]
    wait_until_ended(client, batch.id)
    deadline = time.monotonic() + 10
    while client.messages.batches.retrieve(batch.id).archived_at is None:
        assert time.monotonic() < deadline, "the batch was never archived"
        time.sleep(0.1)

    retried = Cli(server.base_url)("retry", batch.id)

    assert retried.exit_code == 2
    assert "pass the file the batch was submitted from with --from FILE" in retried.stderr
