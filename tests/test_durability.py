"""kill -9 of a real server mid-batch, then a restart: every request ends exactly once."""

import random
import time
from collections import Counter
from collections.abc import Callable

from conftest import Server, simple_request, wait_until_ended


def test_kill_9_mid_batch_then_restart_finishes_each_request_once(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(simulator_latency_ms="20", max_concurrency="50", flush_seconds="0.05")
    client = server.client()
    sizes = {"big": 3000, "small": 40}
    ids = {
        name: client.messages.batches.create(
            requests=[simple_request(f"{name}-{i}", f"prompt {i}") for i in range(count)]  # type: ignore[misc]
        ).id
        for name, count in sizes.items()
    }
    rng = random.Random(7)
    progress = []
    for _ in range(4):
        time.sleep(rng.uniform(0.1, 0.4))
        server.kill()
        server.start()
        client = server.client()
        progress.append(client.messages.batches.retrieve(ids["big"]).request_counts.succeeded)
    assert progress[0] < sizes["big"], "the kills should land mid-batch"

    for name, batch_id in ids.items():
        batch = wait_until_ended(client, batch_id, timeout=120)
        assert batch.request_counts.succeeded == sizes[name]
        seen = Counter(r.custom_id for r in client.messages.batches.results(batch_id))
        assert set(seen) == {f"{name}-{i}" for i in range(sizes[name])}
        assert max(seen.values()) == 1, [cid for cid, n in seen.items() if n > 1][:5]


def test_an_accepted_batch_survives_kill_9_right_after_create(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(simulator_latency_ms="500", max_concurrency="1")
    batch = server.client().messages.batches.create(
        requests=[simple_request(f"r{i}") for i in range(5)]  # type: ignore[misc]
    )
    server.kill()
    server.start()
    batch_after = wait_until_ended(server.client(), batch.id, timeout=30)
    assert batch_after.created_at == batch.created_at
    assert batch_after.request_counts.succeeded == 5
