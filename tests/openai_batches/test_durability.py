"""kill -9 of a real server in the middle of an OpenAI batch, then a restart: every request of
the batch ends exactly once, in its output file."""

import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from conftest import Server
from openai_batches.conftest import chat_line, jsonl, openai_client, wait_until_done, write_jsonl


def test_kill_9_mid_batch_then_restart_finishes_each_request_once(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    server = start_server(simulator_latency_ms="20", max_concurrency="50", flush_seconds="0.05")
    client = openai_client(server)
    total = 2000
    path = write_jsonl(
        tmp_path / "in.jsonl", [chat_line(f"r{i}", f"prompt {i}") for i in range(total)]
    )
    with path.open("rb") as upload:
        input_file = client.files.create(file=upload, purpose="batch")
    batch_id = client.batches.create(
        input_file_id=input_file.id, endpoint="/v1/chat/completions", completion_window="24h"
    ).id
    rng = random.Random(7)
    progress = []
    for _ in range(3):
        time.sleep(rng.uniform(0.1, 0.4))
        server.kill()
        server.start()
        client = openai_client(server)
        counts = client.batches.retrieve(batch_id).request_counts
        assert counts is not None
        progress.append(counts.completed)
    assert progress[0] < total, "the kills should land mid-batch"

    batch = wait_until_done(client, batch_id, timeout=120)
    assert batch.status == "completed" and batch.request_counts is not None
    assert batch.request_counts.completed == total and batch.error_file_id is None
    assert batch.output_file_id is not None
    seen = Counter(
        line["custom_id"] for line in jsonl(client.files.content(batch.output_file_id).text)
    )
    assert set(seen) == {f"r{i}" for i in range(total)}
    assert max(seen.values()) == 1
