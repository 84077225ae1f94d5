"""Saturation benchmark: how close batchgate keeps a slow, concurrency-limited upstream to full.

The upstream is a fake Anthropic `/v1/messages` that answers every request after a fixed
latency and runs at most `--slots` at a time (more wait their turn). Its ideal throughput is
slots / latency. In one run, against the same upstream:
- a hand-written asyncio loop over the official SDK (`AsyncAnthropic`, a semaphore of `slots`);
- batchgate: one batch through `batchgate serve --config`, an anthropic route with
  max_concurrency = slots; requests/s from the batch's created_at to its ended_at.
"""

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import orjson
import uvicorn

MODEL = "claude-haiku-4-5"
PROMPT = "Summarise this review in one sentence: the kettle boils fast and the lid opens wide."
KEY = "bench-key"


def message_params(index: int) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 64,
        "system": "You are a careful analyst of customer feedback.",
        "messages": [{"role": "user", "content": f"{PROMPT} (#{index})"}],
    }


class Upstream:
    """The fake upstream's ASGI app: fixed latency, `slots` at a time, counts what it saw."""

    def __init__(self, latency: float, slots: int) -> None:
        self._latency = latency
        self._slots = asyncio.Semaphore(slots)
        self._in_flight = 0
        self._stats = {"requests": 0, "most_in_flight": 0}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                event = (await receive())["type"]
                await send({"type": f"{event}.complete"})
                if event == "lifespan.shutdown":
                    return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["path"] == "/stats":
            await _send(send, self._stats)
            return
        params = orjson.loads(body)
        self._stats["requests"] += 1
        self._in_flight += 1
        self._stats["most_in_flight"] = max(self._stats["most_in_flight"], self._in_flight)
        try:
            async with self._slots:
                await asyncio.sleep(self._latency)
        finally:
            self._in_flight -= 1
        await _send(
            send,
            {
                "id": f"msg_bench{self._stats['requests']:012d}",
                "type": "message",
                "role": "assistant",
                "model": params["model"],
                "content": [{"type": "text", "text": "A fast kettle with a wide lid."}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 40, "output_tokens": 9, "service_tier": "standard"},
            },
        )


async def _send(send: Any, body: object) -> None:
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": orjson.dumps(body)})


def serve_upstream(port: int, latency: float, slots: int) -> None:
    uvicorn.run(
        Upstream(latency, slots),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        interface="asgi3",
        backlog=4096,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_serving(url: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing answers at {url}")


def upstream_stats(base_url: str) -> dict[str, int]:
    stats: dict[str, int] = httpx.post(f"{base_url}/stats").json()
    return stats


async def hand_written_loop(base_url: str, count: int, slots: int) -> float:
    """Requests/s of the obvious asyncio program: every request at once, `slots` in flight."""
    client = anthropic.AsyncAnthropic(base_url=base_url, api_key=KEY, max_retries=0)
    gate = asyncio.Semaphore(slots)

    async def one(index: int) -> None:
        async with gate:
            await client.messages.create(**message_params(index))

    started = time.perf_counter()
    await asyncio.gather(*(one(index) for index in range(count)))
    elapsed = time.perf_counter() - started
    await client.close()
    return count / elapsed


def batchgate_throughput(directory: Path, upstream_url: str, count: int, slots: int) -> float:
    """Requests/s of one batch through `batchgate serve`, from created_at to ended_at."""
    config = directory / "routes.toml"
    config.write_text(
        "[[routes]]\n"
        'model = "*"\n'
        'backend = "anthropic"\n'
        f'base_url = "{upstream_url}"\n'
        'api_key_env = "BENCH_UPSTREAM_KEY"\n'
        f"max_concurrency = {slots}\n"
    )
    port = free_port()
    env = {
        **os.environ,
        "BATCHGATE_DATABASE_URL": f"sqlite:///{directory / 'batchgate.db'}",
        "BATCHGATE_CONFIG": str(config),
        "BATCHGATE_API_KEYS": KEY,
        "BENCH_UPSTREAM_KEY": KEY,
    }
    command = [sys.executable, "-m", "batchgate", "serve", "--port", str(port)]
    server = subprocess.Popen([*command, "--log-level", "warning"], env=env)
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_serving(f"{base_url}/v1/messages/batches", server)
        client = anthropic.Anthropic(base_url=base_url, api_key=KEY, max_retries=0)
        requests = [
            {"custom_id": f"r-{index}", "params": message_params(index)} for index in range(count)
        ]
        batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
        while batch.processing_status != "ended":
            time.sleep(0.05)
            batch = client.messages.batches.retrieve(batch.id)
        succeeded = batch.request_counts.succeeded
        if succeeded != count:
            raise RuntimeError(f"only {succeeded} of {count} succeeded: {batch.request_counts}")
        assert batch.ended_at is not None
        return count / (batch.ended_at - batch.created_at).total_seconds()
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="requests per run")
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--slots", type=int, default=64)
    parser.add_argument("--serve-upstream", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    latency = args.latency_ms / 1000
    if args.serve_upstream:
        serve_upstream(args.serve_upstream, latency, args.slots)
        return

    port = free_port()
    upstream_url = f"http://127.0.0.1:{port}"
    upstream = subprocess.Popen(
        [
            *(sys.executable, __file__, "--serve-upstream", str(port)),
            *("--latency-ms", str(args.latency_ms), "--slots", str(args.slots)),
        ]
    )
    try:
        wait_until_serving(f"{upstream_url}/stats", upstream)
        hand_written = asyncio.run(hand_written_loop(upstream_url, args.requests, args.slots))
        with tempfile.TemporaryDirectory() as scratch:
            batchgate = batchgate_throughput(Path(scratch), upstream_url, args.requests, args.slots)
        stats = upstream_stats(upstream_url)
    finally:
        upstream.terminate()
        upstream.wait()

    ideal = args.slots / latency
    print(
        f"{args.requests} requests; upstream: {args.latency_ms:g} ms, {args.slots} slots;"
        f" most requests it held at once: {stats['most_in_flight']}"
    )
    print(f"{'':<22}{'req/s':>10}{'of ideal':>10}{'of loop':>10}")
    print(f"{'ideal':<22}{ideal:>10.1f}{1:>10.3f}{'':>10}")
    for name, rate in (("hand-written SDK loop", hand_written), ("batchgate", batchgate)):
        print(f"{name:<22}{rate:>10.1f}{rate / ideal:>10.3f}{rate / hand_written:>10.3f}")


if __name__ == "__main__":
    main()
