"""SIGTERM mid-batch: the process finishes what it started, hands back the rest, exits 0."""

import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Callable

import anthropic

from conftest import Cluster, Server, simple_request, wait_until_ended

SLOW = {"simulator_latency_ms": "100", "flush_seconds": "0.05", "chunk_size": "50"}


def wait_for_progress(client: anthropic.Anthropic, batch_id: str) -> int:
    deadline = time.monotonic() + 20
    while (done := client.messages.batches.retrieve(batch_id).request_counts.succeeded) == 0:
        assert time.monotonic() < deadline, "the batch never started"
        time.sleep(0.05)
    return done


def assert_each_request_once(client: anthropic.Anthropic, batch_id: str, count: int) -> None:
    seen = Counter(response.custom_id for response in client.messages.batches.results(batch_id))
    assert set(seen) == {f"r{i}" for i in range(count)}
    assert set(seen.values()) == {1}


def test_sigterm_mid_batch_exits_0_and_the_restart_finishes_each_request_once(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(max_concurrency="20", **SLOW)
    client = server.client()
    batch = client.messages.batches.create(
        requests=[simple_request(f"r{i}", f"prompt {i}") for i in range(600)]  # type: ignore[misc]
    )
    wait_for_progress(client, batch.id)
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=15) == 0

    with sqlite3.connect(server.database) as db:
        leased = db.execute("SELECT count(*) FROM chunks WHERE state = 1").fetchone()[0]
        committed = db.execute("SELECT succeeded FROM batches").fetchone()[0]
    assert leased == 0, "every unfinished chunk goes back to the queue"
    assert 0 < committed < 600, "the SIGTERM should land mid-batch"

    server.start()
    client = server.client()
    assert wait_until_ended(client, batch.id).request_counts.succeeded == 600
    assert_each_request_once(client, batch.id, 600)


def test_a_sigtermed_workers_chunks_go_to_another_worker_at_once(cluster: Cluster) -> None:
    """The lease is a minute long: only a released chunk can be taken over within seconds."""
    worker_settings = {"max_concurrency": "8", "lease_seconds": "60", **SLOW}
    api = cluster.start_api(chunk_size="50")
    first = cluster.start_worker(**worker_settings)
    client = api.client()
    batch = client.messages.batches.create(
        requests=[simple_request(f"r{i}", f"prompt {i}") for i in range(300)]  # type: ignore[misc]
    )
    wait_for_progress(client, batch.id)
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(timeout=15) == 0
    assert client.messages.batches.retrieve(batch.id).processing_status == "in_progress"

    cluster.start_worker(**worker_settings)
    ended = wait_until_ended(client, batch.id, timeout=20)
    assert ended.request_counts.succeeded == 300
    assert_each_request_once(client, batch.id, 300)
