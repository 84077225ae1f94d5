"""Core benchmark: create, engine throughput, results download and server memory.

Every figure that is compared is measured in the same run, side by side:
- ingest: a create over HTTP against the floor of decoding the same body and bulk-inserting it
  into the same SQLite store in-process;
- engine: requests/s from create to `ended` on the zero-latency simulator (server timestamps),
  alone, and again while the latency probe polls;
- results: the download of every result against sending the same bytes from a file over loopback;
- latency: retrieve and list while the engine runs a second batch of the same size flat out;
- memory: the server's peak RSS (VmHWM) against the body size, and what a results download adds
  to the memory it starts from.
"""

import argparse
import http.client
import http.server
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from saturation import free_port

from batchgate.config.settings import Settings
from batchgate.storage.base import NewChunk
from batchgate.storage.sqlite import SQLiteStore

PROMPT = (
    "Summarise the following customer review in one sentence and rate its sentiment from 1 to 5. "
    "Review: I ordered the blue kettle last month and it arrived a day early, well packed, and it "
    "boils a full litre in under three minutes. The handle stays cool and the lid opens wide enough"
    " to clean inside. My only complaint is that the power cord is rather short, so it has to sit "
    "close to the socket. Overall I am happy with it and would buy it again for the price. "
)


# How often the latency probe retrieves and lists: 100 of each per second.
PROBE_SECONDS = 0.01
# How often the first batch's status is polled: rarely enough to take nothing from the engine.
STATUS_POLL_SECONDS = 0.05


def make_body(count: int, prompt: str = PROMPT) -> bytes:
    return orjson.dumps(
        {
            "requests": [
                {
                    "custom_id": f"review-{i:06d}",
                    "params": {
                        "model": "claude-sonnet-4-5-20250929",
                        "max_tokens": 256,
                        "temperature": 0.2,
                        "system": "You are a careful analyst of customer feedback.",
                        "messages": [{"role": "user", "content": f"{prompt}(#{i})"}],
                    },
                }
                for i in range(count)
            ]
        }
    )


def make_tools_body(count: int, tools: int = 40) -> bytes:
    """Requests that carry many tools with real schemas: large params, short prompts."""
    tool_list = [
        {
            "name": f"lookup_record_{n}",
            "description": f"Looks up record type {n} by its key and returns its fields.",
            "input_schema": {
                "type": "object",
                "properties": {
                    "key": {"type": "string", "description": "The record key."},
                    "fields": {"type": "array", "items": {"type": "string"}},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100},
                    "include_history": {"type": "boolean"},
                    "region": {"type": "string", "enum": ["eu", "us", "apac"]},
                },
                "required": ["key"],
            },
        }
        for n in range(tools)
    ]
    return orjson.dumps(
        {
            "requests": [
                {
                    "custom_id": f"tools-{i:05d}",
                    "params": {
                        "model": "claude-sonnet-4-5-20250929",
                        "max_tokens": 512,
                        "tools": tool_list,
                        "messages": [{"role": "user", "content": f"Find record {i}."}],
                    },
                }
                for i in range(count)
            ]
        }
    )


def floor_seconds(body: bytes, directory: Path, attempt: int) -> float:
    """Decode the body and bulk-insert it into a fresh store of the same kind, in-process."""
    chunk_size = Settings().chunk_size
    started = time.perf_counter()
    requests = orjson.loads(body)["requests"]
    chunks = [
        NewChunk(
            count=len(group),
            custom_ids=orjson.dumps([request["custom_id"] for request in group]),
            params=orjson.dumps([request["params"] for request in group]),
        )
        for group in (
            requests[start : start + chunk_size] for start in range(0, len(requests), chunk_size)
        )
    ]
    store = SQLiteStore(str(directory / f"floor-{attempt}.db"))
    store.create_batch("msgbatch_floor", "owner", 0.0, 86_400.0, len(requests), chunks)
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed


def start_server(
    port: int, env: dict[str, str], arguments: list[str] | None = None
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "batchgate", "serve", "--port", str(port)),
            *("--log-level", "warning", *(arguments or [])),
        ],
        # The benchmark's key: with keys configured the server has no warning to print.
        env={**env, "BATCHGATE_API_KEYS": "bench"},
    )
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/v1/messages/batches", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def post_with_sendall(port: int, path: str, body: bytes, headers: dict[str, str]) -> Any:
    """POST through http.client, which hands the body to one sendall(); httpx would send it in
    small pieces and time itself rather than the server."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    connection.request("POST", path, body=body, headers=headers)
    response = connection.getresponse()
    answer = response.read()
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"create failed: {response.status} {answer[:500]!r}")
    return orjson.loads(answer)


def memory_bytes(pid: int, field: str) -> int:
    """VmRSS (now) or VmHWM (the peak since start or since `reset_peak_rss`)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field}")


def cpu_seconds(pid: int) -> float:
    """The process's CPU time so far, all its threads (user and system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak_rss(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def file_over_loopback_seconds(path: Path) -> float:
    """The floor for a download: the same bytes read from a file and sent over loopback."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-length", str(path.stat().st_size))
            self.end_headers()
            with path.open("rb") as source:
                while block := source.read(1 << 16):
                    self.wfile.write(block)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    started = time.perf_counter()
    with httpx.stream("GET", f"http://127.0.0.1:{server.server_port}/") as response:
        # Kept in memory, as the download it is the floor of keeps them.
        blocks = list(response.iter_bytes(1 << 16))
    elapsed = time.perf_counter() - started
    del blocks
    server.shutdown()
    return elapsed


def run(body: bytes, count: int, port: int) -> dict[str, float]:
    """Two batches of `count` requests through a fresh server; every figure of the table.

    The first is timed alone (create, engine, memory, results download); the second runs while
    the latency probe polls, which also gives the engine's speed under that load.
    """
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        floor = min(floor_seconds(body, directory, attempt) for attempt in range(2))
        env = {**os.environ, "BATCHGATE_DATABASE_URL": f"sqlite:///{directory / 'server.db'}"}
        process = start_server(port, env)
        try:
            base = f"http://127.0.0.1:{port}/v1/messages/batches"
            headers = {"x-api-key": "bench", "content-type": "application/json"}
            with httpx.Client(headers=headers) as client:
                started = time.perf_counter()
                batch = post_with_sendall(port, "/v1/messages/batches", body, headers)
                create = time.perf_counter() - started
                while batch["processing_status"] != "ended":
                    time.sleep(STATUS_POLL_SECONDS)
                    batch = client.get(f"{base}/{batch['id']}").json()
                engine_seconds = _seconds(batch["ended_at"]) - _seconds(batch["created_at"])
                # The create's peak is over: what the download adds is measured on its own.
                peak = memory_bytes(process.pid, "VmHWM")
                before_results = memory_bytes(process.pid, "VmRSS")
                reset_peak_rss(process.pid)
                results_file = directory / "results.jsonl"
                started = time.perf_counter()
                # A connection of its own, as the loopback floor's has. The bytes are kept in
                # memory, as the floor's are: written to disk as they came, they timed the disk.
                with httpx.stream("GET", batch["results_url"], headers=headers) as download:
                    blocks = list(download.iter_bytes(1 << 16))
                results = time.perf_counter() - started
                results_file.write_bytes(b"".join(blocks))
                del blocks
                results_rss = memory_bytes(process.pid, "VmHWM") - before_results
                lines = results_file.read_bytes().count(b"\n")
                assert lines == count, f"{lines} results for {count} requests"
                loopback = file_over_loopback_seconds(results_file)

                batch = post_with_sendall(port, "/v1/messages/batches", body, headers)
                retrieve_ms, list_ms, batch = probe_until_ended(client, base, batch)
                probed_seconds = _seconds(batch["ended_at"]) - _seconds(batch["created_at"])
        finally:
            process.terminate()
            process.wait()
    return {
        "requests": count,
        "body_mb": len(body) / 1e6,
        "create_s": create,
        "floor_s": floor,
        "ingest_ratio": create / floor,
        "engine_req_per_s": count / engine_seconds,
        "engine_probed_req_per_s": count / probed_seconds,
        "retrieve_p50_ms": percentile(retrieve_ms, 50),
        "retrieve_p99_ms": percentile(retrieve_ms, 99),
        "list_p50_ms": percentile(list_ms, 50),
        "list_p99_ms": percentile(list_ms, 99),
        "results_s": results,
        "loopback_s": loopback,
        "results_speed_ratio": loopback / results,
        "results_rss_mb": results_rss / 1e6,
        "peak_rss_mb": peak / 1e6,
        "peak_rss_per_body": peak / len(body),
    }


def probe_until_ended(
    client: httpx.Client, base: str, batch: dict[str, Any]
) -> tuple[list[float], list[float], dict[str, Any]]:
    """A busy dashboard: a retrieve and a list every PROBE_SECONDS while the engine runs flat
    out, at a fixed pace, so that a faster API does not get more work. Their latencies in ms."""
    retrieve_ms: list[float] = []
    list_ms: list[float] = []
    while batch["processing_status"] != "ended":
        next_poll = time.perf_counter() + PROBE_SECONDS
        started = time.perf_counter()
        batch = client.get(f"{base}/{batch['id']}").json()
        retrieve_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        client.get(base, params={"limit": 20}).raise_for_status()
        list_ms.append((time.perf_counter() - started) * 1000)
        time.sleep(max(0.0, next_poll - time.perf_counter()))
    return retrieve_ms, list_ms, batch


def percentile(samples: list[float], rank: int) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, len(ordered) * rank // 100)]


def _seconds(timestamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--requests",
        default="1000,10000,100000",
        help="comma-separated batch sizes, one run each (default: %(default)s)",
    )
    parser.add_argument(
        "--large",
        action="store_true",
        help="also a 100,000-request create of ~250 MB and 1,000 tools-heavy requests",
    )
    parser.add_argument("--port", type=int, default=free_port(), help="(default: a free one)")
    args = parser.parse_args()
    workloads = [(f"{int(n):,}", int(n), make_body(int(n))) for n in args.requests.split(",")]
    if args.large:
        workloads.append(("100,000 large", 100_000, make_body(100_000, PROMPT * 5)))
        workloads.append(("1,000 tools", 1_000, make_tools_body(1_000)))
    rows = []
    for label, count, body in workloads:
        rows.append((label, run(body, count, args.port)))
        del body
    print(f"{'':<20}" + "".join(f"{label:>15}" for label, _ in rows))
    for name in list(rows[0][1])[1:]:
        print(f"{name:<20}" + "".join(f"{row[name]:>15,.3f}" for _, row in rows))


if __name__ == "__main__":
    main()
