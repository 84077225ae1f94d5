"""The dashboard's batches page on a big database: how long `/ui/batches` takes to render with
100,000 batches in the workspace (the target: under 300 ms), unfiltered, by status, by label.

The batches are written straight into a fresh SQLite file (a create per batch would take the
benchmark minutes and measure the API instead): one in a hundred still in progress, one in ten
labelled `team=a`, each with usage for one model and ten requests' custom_ids. Then a real
`batchgate serve` renders the page for a signed-in browser's cookie, each view `--samples` times
after one warm-up.
"""

import argparse
import json
import os
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from core import start_server

from batchgate.api.keys import key_hash
from batchgate.lifecycle.ids import new_batch_id
from batchgate.storage.sqlite import SQLiteStore

REQUESTS_PER_BATCH = 10
KEY = "bench"  # core.start_server's BATCHGATE_API_KEYS
VIEWS = {
    "page_ms": "",
    "status_in_progress_ms": "?status=in_progress",
    "label_ms": "?label=team%3Da",
    # One of the oldest batches holds it: the search reads every batch's custom_ids.
    "custom_id_search_ms": "?q=r5-3",
    "older_page_ms": None,  # the second page, by its cursor
}


def fill(path: Path, count: int) -> None:
    SQLiteStore(str(path)).close()
    owner, now = key_hash(KEY), time.time()
    rows, labels, usage, requests = [], [], [], []
    for number in range(count):
        batch_id = new_batch_id()
        created = now - (count - number)
        running = number % 100 == 0
        labelled = number % 10 == 0
        total = random.randint(1, 10_000)
        errored = 0 if running else total // 20
        rows.append(
            (
                batch_id, owner, "in_progress" if running else "ended", total,
                total if running else 0, 0 if running else total - errored, errored,
                created, created + 86400, None if running else created + 60,
                '{"team": "a"}' if labelled else None,
            )
        )  # fmt: skip
        if labelled:
            labels.append((owner, "team", "a", batch_id))
        custom_ids = [f"r{number}-{i}" for i in range(REQUESTS_PER_BATCH)]
        requests.append((batch_id, 0, json.dumps(custom_ids).encode(), b"[]"))
        if not running:
            usage.append((batch_id, "claude-sonnet-4-5", total - errored, 100 * total, 20 * total))
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO batches (id, owner, status, total, processing, succeeded, errored,"
            " created_at, expires_at, ended_at, metadata) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        db.executemany("INSERT INTO batch_labels VALUES (?,?,?,?)", labels)
        db.executemany(
            "INSERT INTO chunk_requests (batch_id, chunk_no, custom_ids, params) VALUES (?,?,?,?)",
            requests,
        )
        db.executemany(
            "INSERT INTO batch_usage (batch_id, model, requests, input_tokens, output_tokens,"
            " cache_creation_input_tokens, cache_read_input_tokens) VALUES (?,?,?,?,?,0,0)",
            usage,
        )
        db.execute("ANALYZE")


def timed(client: httpx.Client, url: str, samples: int) -> list[float]:
    client.get(url).raise_for_status()
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - started)
        response.raise_for_status()
        assert "data-batch-id" in response.text
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--port", type=int, default=18_931)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bench.db"
        fill(path, options.batches)
        env = {**os.environ, "BATCHGATE_DATABASE_URL": f"sqlite:///{path}"}
        server = start_server(options.port, env)
        base = f"http://127.0.0.1:{options.port}/ui/batches"
        try:
            with httpx.Client(cookies={"batchgate_key": KEY}, timeout=30) as client:
                first = client.get(base).text
                last_id = first.rsplit('data-batch-id="', 1)[1].split('"', 1)[0]
                results = {}
                for row, query in VIEWS.items():
                    url = base + (query if query is not None else f"?after_id={last_id}")
                    results[row] = timed(client, url, options.samples)
        finally:
            server.terminate()
            server.wait()
    print(f"\n/ui/batches with {options.batches:,} batches, {options.samples} samples each\n")
    print("| row | p50 | p99 | max |")
    print("|---|---:|---:|---:|")
    for row, times in results.items():
        ordered = sorted(times)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        print(
            f"| {row} | {1000 * statistics.median(times):.1f} | {1000 * p99:.1f}"
            f" | {1000 * max(times):.1f} |"
        )


if __name__ == "__main__":
    main()
