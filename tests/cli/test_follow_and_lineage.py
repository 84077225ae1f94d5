"""`batchgate results --follow` prints a running batch's results as they come; `batchgate retry`
against batchgate makes a child batch that keeps its lineage; `results --merged` merges them."""

import time

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
    assert child.model_extra == {"parent_batch_id": original.id, "retry_batch_ids": []}
    merged = read_jsonl(cli("results", original.id, "--merged").stdout)
    assert sorted(line["custom_id"] for line in merged) == sorted(f"m{i}" for i in range(20))
