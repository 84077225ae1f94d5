"""A 50,000-line, ~200 MB input file, uploaded with the `openai` SDK and made a batch: the
server's memory grows by less than 3 times the file (the upload is streamed to disk, stored in
pieces, and checked line by line)."""

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Server
from openai_batches.conftest import chat_line, openai_client

LINES = 50_000
# A prompt that makes each line ~4 KB: ~200 MB in all.
PROMPT = "Summarise this review in one sentence and rate it from 1 to 5. " * 60


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.mark.slow
def test_a_200_mb_upload_and_create_stay_within_3x_the_file_in_memory(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    path = tmp_path / "big.jsonl"
    with path.open("w") as file:
        for i in range(LINES):
            file.write(json.dumps(chat_line(f"r{i}", f"{PROMPT}#{i}")) + "\n")
    size = path.stat().st_size
    assert size > 190_000_000
    server = start_server(simulator_latency_ms="60000", max_concurrency="1")
    assert server.process is not None
    before = peak_rss_bytes(server.process.pid)
    client = openai_client(server)
    client.timeout = 300

    with path.open("rb") as upload:
        input_file = client.files.create(file=upload, purpose="batch")
    batch = client.batches.create(
        input_file_id=input_file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )

    assert input_file.bytes == size
    assert batch.status == "in_progress" and batch.request_counts is not None
    assert batch.request_counts.total == LINES
    grown = peak_rss_bytes(server.process.pid) - before
    assert grown < 3 * size, f"peak RSS grew by {grown / size:.2f} times the file"
    client.batches.cancel(batch.id)
