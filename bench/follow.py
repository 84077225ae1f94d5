"""Following a batch's results as they come (`results?follow=true`): how soon a follower's first
line arrives after the first part commits, and what following adds to the server's memory.

Each size runs twice on a fresh embedded server, side by side: once with a follower from the
create to the end, once without. Both runs poll the batch every 10 ms to see its first part
commit (the first count that moves); the follower's first line is timed against that moment.
The server's peak RSS (VmHWM, reset after the create) is compared between the two runs.
"""

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import httpx
from core import make_body, memory_bytes, post_with_sendall, reset_peak_rss, start_server
from saturation import free_port

HEADERS = {"x-api-key": "bench", "content-type": "application/json"}
POLL_SECONDS = 0.01


def run(body: bytes, count: int, port: int, follow: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        env = {
            **os.environ,
            "BATCHGATE_DATABASE_URL": f"sqlite:///{Path(directory) / 'bench.db'}",
            # A little latency: the batch runs for seconds, long enough to follow.
            "BATCHGATE_SIMULATOR_LATENCY_MS": "5",
        }
        server = start_server(port, env)
        base = f"http://127.0.0.1:{port}/v1/messages/batches"
        try:
            batch = post_with_sendall(port, "/v1/messages/batches", body, HEADERS)
            reset_peak_rss(server.pid)
            start_rss = memory_bytes(server.pid, "VmRSS")
            first_line: list[float] = []
            lines = [0]

            def follower() -> None:
                with httpx.stream(
                    "GET",
                    f"{base}/{batch['id']}/results",
                    params={"follow": "true"},
                    headers=HEADERS,
                    timeout=600,
                ) as response:
                    for line in response.iter_lines():
                        if line:
                            if not first_line:
                                first_line.append(time.monotonic())
                            lines[0] += 1

            thread = threading.Thread(target=follower)
            if follow:
                thread.start()
            first_commit = None
            with httpx.Client(headers=HEADERS, timeout=60) as client:
                while True:
                    state = client.get(f"{base}/{batch['id']}").json()
                    counts = state["request_counts"]
                    if first_commit is None and counts["processing"] < count:
                        first_commit = time.monotonic()
                    if state["processing_status"] == "ended":
                        break
                    time.sleep(POLL_SECONDS)
            if follow:
                thread.join()
                assert lines[0] == count, f"the follower got {lines[0]} lines of {count}"
            peak = memory_bytes(server.pid, "VmHWM")
        finally:
            server.terminate()
            server.wait()
    assert first_commit is not None
    return {
        "first line after first commit (s)": first_line[0] - first_commit if first_line else 0.0,
        "peak RSS over start (MB)": (peak - start_rss) / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", default="10000,100000", help="comma-separated sizes")
    parser.add_argument("--port", type=int, default=free_port(), help="(default: a free one)")
    args = parser.parse_args()
    print(f"{'requests':>10} {'follower':>9} {'first line (s)':>15} {'peak RSS +MB':>13}")
    for size in (int(n) for n in args.requests.split(",")):
        body = make_body(size)
        for follow in (False, True):
            row = run(body, size, args.port, follow)
            first = f"{row['first line after first commit (s)']:.3f}" if follow else "-"
            print(
                f"{size:>10,} {'yes' if follow else 'no':>9} {first:>15}"
                f" {row['peak RSS over start (MB)']:>13.1f}"
            )


if __name__ == "__main__":
    main()
