"""Events (docs/events.md): what open event streams cost the API, and how soon a webhook hears
that a batch ended.

Streams: one `batchgate serve` (SQLite, simulator at 5 ms) runs a batch while a client retrieves
a batch every 10 ms; the retrieve latency is measured twice side by side on the same server, with
no stream open and with N workspace streams (`GET /v1/events`, each woken by every event of the
workspace) held open by another process that reads them. The row is the p50 and p99 of each and
their ratio.

Webhooks: on a fresh server with an endpoint on loopback, small batches are created one after
another; each `batch.ended` delivery's arrival is timed against the batch's `ended_at` (the
server's own clock, the same machine's).
"""

import argparse
import asyncio
import http.server
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import orjson
from core import make_body, percentile, post_with_sendall, start_server
from saturation import free_port

HEADERS = {"x-api-key": "bench", "content-type": "application/json"}
PROBE_SECONDS = 0.01


def hold_streams(port: int, count: int) -> None:
    """Run in a child process: opens `count` streams, says so on stdout, reads them for ever."""

    async def main() -> None:
        limits = httpx.Limits(max_connections=count + 10)
        async with httpx.AsyncClient(limits=limits, timeout=None) as client:
            opened = asyncio.Event()
            ready = [0]

            async def one() -> None:
                async with client.stream(
                    "GET", f"http://127.0.0.1:{port}/v1/events", headers=HEADERS
                ) as response:
                    ready[0] += 1
                    if ready[0] == count:
                        opened.set()
                    async for _ in response.aiter_raw():
                        pass

            tasks = [asyncio.create_task(one()) for _ in range(count)]
            await opened.wait()
            print("open", flush=True)
            await asyncio.gather(*tasks)

    asyncio.run(main())


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def probe(base: str, requests: int, samples: int) -> list[float]:
    """Retrieves while a batch of `requests` runs: `samples` latencies in ms."""
    body = make_body(requests)
    port = int(base.rsplit(":", 1)[1].split("/")[0])
    batch = post_with_sendall(port, "/v1/messages/batches", body, HEADERS)
    latencies: list[float] = []
    with httpx.Client(headers=HEADERS, timeout=60) as client:
        while len(latencies) < samples:
            started = time.perf_counter()
            client.get(f"{base}/v1/messages/batches/{batch['id']}").raise_for_status()
            latencies.append((time.perf_counter() - started) * 1000)
            time.sleep(PROBE_SECONDS)
    return latencies


def streams_row(port: int, streams: int, requests: int, samples: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        env = {
            **os.environ,
            "BATCHGATE_DATABASE_URL": f"sqlite:///{Path(directory) / 'bench.db'}",
            "BATCHGATE_SIMULATOR_LATENCY_MS": "5",
        }
        server = start_server(port, env)
        base = f"http://127.0.0.1:{port}"
        holder = None
        try:
            probe(base, 100, 50)  # warm-up
            alone = probe(base, requests, samples)
            holder = subprocess.Popen(
                [sys.executable, __file__, "--hold", str(streams), "--port", str(port)],
                stdout=subprocess.PIPE,
            )
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == b"open", "the streams did not open"
            held = probe(base, requests, samples)
        finally:
            if holder is not None:
                holder.kill()
                holder.wait()
            server.terminate()
            server.wait()
    return {
        "p50_none": percentile(alone, 50),
        "p99_none": percentile(alone, 99),
        "p50_streams": percentile(held, 50),
        "p99_streams": percentile(held, 99),
    }


def webhook_latencies(port: int, batches: int) -> list[float]:
    arrivals: dict[str, float] = {}
    ended_at: dict[str, float] = {}
    lock = threading.Lock()

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            arrived = time.time()
            payload = orjson.loads(body)
            if payload["type"] == "batch.ended":
                with lock:
                    arrivals[payload["data"]["id"]] = arrived
                    ended_at[payload["data"]["id"]] = _seconds(payload["data"]["ended_at"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as directory:
        env = {
            **os.environ,
            "BATCHGATE_DATABASE_URL": f"sqlite:///{Path(directory) / 'bench.db'}",
            "BATCHGATE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "1",
        }
        server = start_server(port, env)
        try:
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}", headers=HEADERS, timeout=60
            ) as client:
                client.post(
                    "/v1/webhooks",
                    json={
                        "url": f"http://127.0.0.1:{receiver.server_port}/hook",
                        "event_types": ["batch.ended"],
                    },
                ).raise_for_status()
                body = make_body(10)
                for _ in range(batches):
                    batch = post_with_sendall(port, "/v1/messages/batches", body, HEADERS)
                    deadline = time.monotonic() + 30
                    while batch["id"] not in arrivals:
                        assert time.monotonic() < deadline, "no delivery within 30 s"
                        time.sleep(0.005)
        finally:
            server.terminate()
            server.wait()
            receiver.shutdown()
    return [(arrivals[key] - ended_at[key]) * 1000 for key in arrivals]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=20000, help="of the probed batch")
    parser.add_argument("--samples", type=int, default=1000, help="retrieves per side")
    parser.add_argument("--batches", type=int, default=50, help="for the webhook latency")
    parser.add_argument("--port", type=int, default=free_port(), help="(default: a free one)")
    parser.add_argument("--hold", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hold:
        hold_streams(args.port, args.hold)
        return
    row = streams_row(args.port, args.streams, args.requests, args.samples)
    print(
        f"{'streams':>8} {'p50 none':>9} {'p99 none':>9} {'p50 open':>9} {'p99 open':>9}"
        f" {'p99 ratio':>10}"
    )
    print(
        f"{args.streams:>8,} {row['p50_none']:>9.2f} {row['p99_none']:>9.2f}"
        f" {row['p50_streams']:>9.2f} {row['p99_streams']:>9.2f}"
        f" {row['p99_streams'] / row['p99_none']:>10.2f}"
    )
    latencies = webhook_latencies(args.port, args.batches)
    print(
        f"webhook batch.ended -> receiver, {len(latencies)} batches:"
        f" p50 {percentile(latencies, 50):.1f} ms, p99 {percentile(latencies, 99):.1f} ms"
    )


if __name__ == "__main__":
    main()
