"""`batchgate results --follow` prints a running batch's results as they come; `batchgate retry`
against batchgate makes a child batch that keeps its lineage; `results --merged` merges them."""

import threading
import time
from collections.abc import Callable

from typer.testing import Result

from cli.conftest import Cli, batch_ids, read_jsonl
from conftest import Server, simple_request, wait_until_ended


def test_follow_prints_every_result_of_a_running_batch_once_as_text(slow_server: Server) -> None:
    client = slow_server.client()
    batch = client.messages.batches.create(
        requests=[simple_request(f"f{i}", f"line {i}") for i in range(6)]  # type: ignore[list-item]
    )
    started = time.monotonic()
    followed = Cli(slow_server.base_url)("results", batch.id, "--follow", "--text")

    assert followed.exit_code == 0, followed.output
    # Six requests, two at a time, 200 ms each: it ran while the batch did, and ended with it.
    assert time.monotonic() - started > 0.4
    assert client.messages.batches.retrieve(batch.id).processing_status == "ended"
    assert sorted(followed.stdout.splitlines()) == sorted(
        f"f{i}\tYou said: line {i}" for i in range(6)
    )


def test_retry_makes_a_child_batch_and_merged_results_cover_the_original(
    faulty_server: Server,
) -> None:
    client = faulty_server.client()
    requests = [simple_request(f"m{i}", f"merge {i}") for i in range(20)]
    original = wait_until_ended(client, client.messages.batches.create(requests=requests).id)  # type: ignore[arg-type]
    assert original.request_counts.errored
    cli = Cli(faulty_server.base_url)

    retried = cli("retry", original.id)

    assert retried.exit_code == 0, retried.output
    [child_id] = batch_ids(retried.stdout)
    child = wait_until_ended(client, child_id)
    assert child.model_extra["parent_batch_id"] == original.id
    assert child.model_extra["retry_batch_ids"] == []
    merged = read_jsonl(cli("results", original.id, "--merged").stdout)
    assert sorted(line["custom_id"] for line in merged) == sorted(f"m{i}" for i in range(20))


def test_follow_carries_on_across_a_server_restart(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(simulator_latency_ms="50", max_concurrency="4", flush_seconds="0.1")
    client = server.client()
    batch = client.messages.batches.create(
        requests=[simple_request(f"k{i}", f"restart {i}") for i in range(200)]  # type: ignore[list-item]
    )
    outcome: list[Result] = []
    follower = threading.Thread(
        target=lambda: outcome.append(Cli(server.base_url)("results", batch.id, "--follow"))
    )
    follower.start()
    while not client.messages.batches.retrieve(batch.id).request_counts.succeeded:
        time.sleep(0.05)
    server.kill()
    server.start()
    follower.join(timeout=120)

    [followed] = outcome
    assert followed.exit_code == 0, followed.output
    lines = followed.stdout.splitlines()
    assert len(lines) == len(set(lines)) == 200
    final = Cli(server.base_url)("results", batch.id).stdout.splitlines()
    assert set(lines) == set(final)
