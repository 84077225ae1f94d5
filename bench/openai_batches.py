"""OpenAI Batch API benchmark: upload + create, engine throughput and server memory.

Measured side by side in one run, on one `batchgate serve` (SQLite, zero-latency simulator):
- ingest: `POST /v1/files` of a JSONL file of N chat requests plus `POST /v1/batches`, against
  the floor of decoding the same lines and bulk-inserting them into a fresh store in-process
  (as bench/core.py measures the Message Batches create);
- engine: requests/s from the create's answer to the batch's end as the server's store records
  it (`ended_at`, to the microsecond: the server's clock is this process's), for that OpenAI
  batch and for a Message Batch of the same prompts as Messages params, on the same server; each
  kind three times, taking turns, the faster run of each compared (engine_ratio_first: the first
  run of each).
  engine_ratio_polled times the same runs until a poll (every 50 ms) sees the batch ended, as a
  client does: a run takes about half a second, so the poll alone moves that ratio by up to a
  tenth. (The store's `created_at` would not do as the start: a Message Batch's is taken before
  its requests are stored, which the OpenAI batch's file had been at upload);
  each create but the first on a settled store (its write-ahead log checkpointed by the
  benchmark), so that no run pays for copying the writes of the one before (the first OpenAI
  batch, created with the upload, pays for the upload's); and the server's CPU time (all its
  threads) per request over the same spans, the least of each kind's runs;
- memory: the server's peak RSS (VmHWM) during upload and create, against the file's size.
"""

import argparse
import contextlib
import math
import os
import sqlite3
import tempfile
import time
from pathlib import Path

import httpx
import orjson
from core import (
    PROMPT,
    cpu_seconds,
    memory_bytes,
    post_with_sendall,
    reset_peak_rss,
    start_server,
)
from saturation import free_port

from batchgate.config.settings import Settings
from batchgate.storage.base import NewChunk
from batchgate.storage.sqlite import SQLiteStore

BOUNDARY = "batchgate-bench-boundary"
HEADERS = {"authorization": "Bearer bench"}
POLL_SECONDS = 0.05
ENGINE_ROUNDS = 3
# How long the benchmark tries to checkpoint the server's store before a create.
SETTLE_SECONDS = 30.0


def chat_body(i: int, prompt: str) -> dict[str, object]:
    return {
        "model": "gpt-4o-mini",
        "max_tokens": 256,
        "temperature": 0.2,
        "messages": [
            {"role": "system", "content": "You are a careful analyst of customer feedback."},
            {"role": "user", "content": f"{prompt}(#{i})"},
        ],
    }


def make_file(count: int, prompt: str) -> bytes:
    return b"".join(
        orjson.dumps(
            {
                "custom_id": f"review-{i:06d}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": chat_body(i, prompt),
            }
        )
        + b"\n"
        for i in range(count)
    )


def make_messages_body(count: int, prompt: str) -> bytes:
    requests = []
    for i in range(count):
        body = chat_body(i, prompt)
        messages = body["messages"]
        assert isinstance(messages, list)
        requests.append(
            {
                "custom_id": f"review-{i:06d}",
                "params": {
                    "model": "claude-sonnet-4-5-20250929",
                    "max_tokens": 256,
                    "temperature": 0.2,
                    "system": messages[0]["content"],
                    "messages": [messages[1]],
                },
            }
        )
    return orjson.dumps({"requests": requests})


def multipart(file: bytes) -> bytes:
    return b"".join(
        [
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n'.encode(),
            b"batch\r\n",
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="in.jsonl"\r\n'
            "Content-Type: application/jsonl\r\n\r\n".encode(),
            file,
            f"\r\n--{BOUNDARY}--\r\n".encode(),
        ]
    )


def floor_seconds(file: bytes, directory: Path, attempt: int) -> float:
    """Decode every line and bulk-insert the requests into a fresh store, in-process."""
    chunk_size = Settings().chunk_size
    started = time.perf_counter()
    lines = [orjson.loads(line) for line in file.splitlines()]
    chunks = [
        NewChunk(
            count=len(group),
            custom_ids=orjson.dumps([line["custom_id"] for line in group]),
            params=orjson.dumps([line["body"] for line in group]),
        )
        for group in (
            lines[start : start + chunk_size] for start in range(0, len(lines), chunk_size)
        )
    ]
    store = SQLiteStore(str(directory / f"floor-{attempt}.db"))
    store.create_batch("batch_floor", "owner", 0.0, 86_400.0, len(lines), chunks)
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed


def create_openai_batch(port: int, file_id: str) -> dict[str, object]:
    return post_with_sendall(
        port,
        "/v1/batches",
        orjson.dumps(
            {
                "input_file_id": file_id,
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
            }
        ),
        {**HEADERS, "content-type": "application/json"},
    )


def settle(database: Path) -> None:
    """Copies the server's write-ahead log into its database file (a checkpoint, in this
    process): a Message Batch's create writes its requests (200 MB of large ones), which the
    server's checkpoints copy over the next seconds, into whichever run comes next."""
    deadline = time.monotonic() + SETTLE_SECONDS
    with contextlib.closing(sqlite3.connect(database, timeout=SETTLE_SECONDS)) as db:
        while time.monotonic() < deadline:
            _, frames, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if copied == frames:
                return
            time.sleep(POLL_SECONDS)


def wait_ended(
    client: httpx.Client, url: str, done: tuple[str, ...], key: str
) -> dict[str, object]:
    while True:
        batch: dict[str, object] = client.get(url).json()
        if batch[key] in done:
            return batch
        time.sleep(POLL_SECONDS)


def engine_seconds(database: Path, batch_id: str, answered_at: float) -> float:
    """From the batch's create's answer (`time.time()`) to its end as the server's store
    recorded it."""
    with contextlib.closing(sqlite3.connect(database, timeout=SETTLE_SECONDS)) as db:
        [(ended_at,)] = db.execute("SELECT ended_at FROM batches WHERE id = ?", (batch_id,))
    return float(ended_at) - answered_at


def run(count: int, prompt: str, port: int) -> dict[str, float]:
    file = make_file(count, prompt)
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        floor = min(floor_seconds(file, directory, attempt) for attempt in range(2))
        database = directory / "server.db"
        env = {**os.environ, "BATCHGATE_DATABASE_URL": f"sqlite:///{database}"}
        process = start_server(port, env)
        try:
            base = f"http://127.0.0.1:{port}/v1"
            # Built before the clock starts, as bench/core.py builds its create's body: the
            # upload is timed from its first byte sent (0.08 s of copying for 197 MB, else).
            body = multipart(file)
            reset_peak_rss(process.pid)
            before = memory_bytes(process.pid, "VmRSS")
            started = time.perf_counter()
            uploaded = post_with_sendall(
                port,
                "/v1/files",
                body,
                {**HEADERS, "content-type": f"multipart/form-data; boundary={BOUNDARY}"},
            )
            upload = time.perf_counter() - started
            created = create_openai_batch(port, uploaded["id"])
            ingest = time.perf_counter() - started
            answered_at = time.time()
            peak = memory_bytes(process.pid, "VmHWM") - before
            del body
            with httpx.Client(headers=HEADERS) as client:
                # Each kind ENGINE_ROUNDS times, taking turns: the batch that runs first after
                # the upload pays for settling its writes (the store's checkpoint), whichever
                # kind it is.
                openai_runs, anthropic_runs = [], []
                openai_polled, anthropic_polled = [], []
                openai_cpu, anthropic_cpu = [], []
                for round_number in range(ENGINE_ROUNDS):
                    # The first OpenAI batch was created with the upload and runs meanwhile.
                    if round_number:
                        settle(database)
                        created = create_openai_batch(port, uploaded["id"])
                        answered_at = time.time()
                    started, cpu = time.perf_counter(), cpu_seconds(process.pid)
                    wait_ended(client, f"{base}/batches/{created['id']}", ("completed",), "status")
                    openai_polled.append(time.perf_counter() - started)
                    openai_cpu.append(cpu_seconds(process.pid) - cpu)
                    openai_runs.append(engine_seconds(database, str(created["id"]), answered_at))
                    settle(database)
                    messages = post_with_sendall(
                        port,
                        "/v1/messages/batches",
                        make_messages_body(count, prompt),
                        {**HEADERS, "content-type": "application/json"},
                    )
                    answered_at = time.time()
                    started, cpu = time.perf_counter(), cpu_seconds(process.pid)
                    url = f"{base}/messages/batches/{messages['id']}"
                    wait_ended(client, url, ("ended",), "processing_status")
                    anthropic_polled.append(time.perf_counter() - started)
                    anthropic_cpu.append(cpu_seconds(process.pid) - cpu)
                    anthropic_runs.append(engine_seconds(database, messages["id"], answered_at))
        finally:
            process.terminate()
            process.wait()
    return {
        "requests": count,
        "file_mb": len(file) / 1e6,
        "upload_create_s": ingest,
        "upload_s": upload,
        "floor_s": floor,
        "ingest_ratio": ingest / floor,
        "openai_req_per_s": count / min(openai_runs),
        "messages_req_per_s": count / min(anthropic_runs),
        "engine_ratio": min(anthropic_runs) / min(openai_runs),
        "engine_ratio_first": anthropic_runs[0] / openai_runs[0],
        "engine_ratio_polled": min(anthropic_polled) / min(openai_polled),
        "openai_cpu_us": min(openai_cpu) / count * 1e6,
        "messages_cpu_us": min(anthropic_cpu) / count * 1e6,
        # A small batch may run within one clock tick of CPU time: no ratio then.
        "cpu_ratio": min(anthropic_cpu) / min(openai_cpu) if min(openai_cpu) else math.nan,
        "peak_rss_mb": peak / 1e6,
        "peak_rss_per_file": peak / len(file),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", default="50000", help="comma-separated line counts")
    parser.add_argument(
        "--large", action="store_true", help="also 50,000 lines of ~4 KB each (~200 MB)"
    )
    parser.add_argument("--port", type=int, default=free_port(), help="(default: a free one)")
    args = parser.parse_args()
    workloads = [(f"{int(n):,}", int(n), PROMPT) for n in args.requests.split(",")]
    if args.large:
        workloads.append(("50,000 large", 50_000, PROMPT * 8))
    rows = [(label, run(count, prompt, args.port)) for label, count, prompt in workloads]
    print(f"{'':<20}" + "".join(f"{label:>15}" for label, _ in rows))
    for name in list(rows[0][1])[1:]:
        print(f"{name:<20}" + "".join(f"{row[name]:>15,.3f}" for _, row in rows))


if __name__ == "__main__":
    main()
