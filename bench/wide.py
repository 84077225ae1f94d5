"""Width benchmark: how close batchgate keeps a wide, slow upstream to full (issue #16).

The upstream is lean on purpose, so that the clients are what is measured: a raw asyncio server
(another process) that answers every request, as many at once as arrive, after `--latency`
seconds, with a canned Message (`/v1/messages`) or chat completion (`/v1/chat/completions`).
Its ideal throughput is width / latency. In one run, against the same upstream, `--width` in
flight each:
- the official SDK loop (`AsyncAnthropic`, a semaphore of `width`) on its default transport
  (httpx) and on its aiohttp one (`DefaultAioHttpClient`), each with a pool of `width`;
- a plain aiohttp loop (no SDK): what the transport alone allows;
- batchgate: one batch through `batchgate serve` on an `anthropic` route, then one on an
  `openai` route, each route and the engine at `width`. Requests/s from the batch's created_at
  to its ended_at; the server's CPU time per request; its RSS while the batch runs; the
  latency of the retrieves polled meanwhile; and the garbage collections meanwhile, each of which
  pauses the whole server (`batchgate_gc_pause_seconds`).
"""

import argparse
import asyncio
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import aiohttp
import anthropic
import httpx2
import orjson
from prometheus_client.parser import text_string_to_metric_families
from saturation import KEY, MODEL, free_port, message_params, wait_until_serving

OPENAI_MODEL = "gpt-bench"
MESSAGE = orjson.dumps(
    {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": "A fast kettle with a wide lid."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 40, "output_tokens": 9},
    }
)
COMPLETION = orjson.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": OPENAI_MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "A fast kettle with a wide lid."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 40, "completion_tokens": 9, "total_tokens": 49},
    }
)


def _answer(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )


ANSWERS = {b"/v1/messages": _answer(MESSAGE), b"/v1/chat/completions": _answer(COMPLETION)}


class LeanUpstream(asyncio.Protocol):
    """One connection: reads each request (head, then content-length bytes of body) and writes
    the canned answer for its path `latency` seconds later. Keep-alive; no validation."""

    def __init__(self, latency: float) -> None:
        self._latency = latency
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are asyncio's in all but their classes.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end_of_head := self._buffer.find(b"\r\n\r\n")) >= 0:
            head = self._buffer[:end_of_head].lower()
            body_at = end_of_head + 4
            if b"transfer-encoding: chunked" in head:
                # JSON has no raw line breaks, so the last chunk is the first empty one.
                last_chunk = self._buffer.find(b"\r\n0\r\n\r\n", body_at - 2)
                if last_chunk < 0:
                    return
                end = last_chunk + 7
            else:
                length_at = head.find(b"content-length:")
                end = body_at
                if length_at >= 0:
                    end += int(head[length_at + 15 :].split(b"\r\n", 1)[0])
                if len(self._buffer) < end:
                    return
            self._buffer = self._buffer[end:]
            method, path = head.split(b" ", 2)[:2]
            answer = ANSWERS.get(path.split(b"?")[0], ANSWERS[b"/v1/messages"])
            # Anything but a POST (the readiness probe) is answered at once.
            delay = self._latency if method == b"post" else 0.0
            asyncio.get_running_loop().call_later(delay, self._write, answer)

    def _write(self, answer: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


def serve_upstream(port: int, latency: float) -> None:
    import uvloop

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: LeanUpstream(latency), "127.0.0.1", port, backlog=8192
        )
        async with server:
            await server.serve_forever()

    uvloop.run(serve())


def pool(width: int) -> httpx2.Limits:
    return httpx2.Limits(max_connections=width, max_keepalive_connections=width)


async def sdk_loop(http_client: httpx2.AsyncClient, upstream: str, count: int, width: int) -> float:
    """Requests/s of the obvious asyncio program: every request at once, `width` in flight."""
    # The SDK's default retries: at 4,096 connecting at once, some connects take longer than
    # its connect timeout (5 s) while the upstream's accept queue overflows.
    client = anthropic.AsyncAnthropic(base_url=upstream, api_key=KEY, http_client=http_client)
    gate = asyncio.Semaphore(width)

    async def one(index: int) -> None:
        async with gate:
            await client.messages.create(**message_params(index))

    started = time.perf_counter()
    await asyncio.gather(*(one(index) for index in range(count)))
    elapsed = time.perf_counter() - started
    await client.close()
    return count / elapsed


async def sdk_loop_httpx(upstream: str, count: int, width: int) -> float:
    client = anthropic.DefaultAsyncHttpxClient(limits=pool(width))
    return await sdk_loop(client, upstream, count, width)


async def sdk_loop_aiohttp(upstream: str, count: int, width: int) -> float:
    client = anthropic.DefaultAioHttpClient(limits=pool(width))
    return await sdk_loop(client, upstream, count, width)


async def plain_aiohttp_loop(upstream: str, count: int, width: int) -> float:
    gate = asyncio.Semaphore(width)
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=width)) as session:

        async def one(index: int) -> None:
            async with gate:
                body = orjson.dumps(message_params(index))
                async with session.post(
                    f"{upstream}/v1/messages", data=body, headers=headers
                ) as answer:
                    orjson.loads(await answer.read())

        started = time.perf_counter()
        await asyncio.gather(*(one(index) for index in range(count)))
        return count / (time.perf_counter() - started)


@dataclass
class BatchRun:
    rate: float
    cpu_seconds: float
    rss_mib: list[float] = field(default_factory=list)
    retrieve_ms: list[float] = field(default_factory=list)
    gc_pauses: "GcPauses | None" = None


@dataclass
class GcPauses:
    """The server's garbage collections, all generations, from its histogram."""

    count: float
    seconds: float
    over_25_ms: float

    def __sub__(self, before: "GcPauses") -> "GcPauses":
        return GcPauses(
            self.count - before.count,
            self.seconds - before.seconds,
            self.over_25_ms - before.over_25_ms,
        )


def gc_pauses(base_url: str) -> GcPauses:
    text = httpx2.get(f"{base_url}/metrics").text
    pauses = GcPauses(0.0, 0.0, 0.0)
    for family in text_string_to_metric_families(text):
        if family.name != "batchgate_gc_pause_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_count"):
                pauses.count += sample.value
                pauses.over_25_ms += sample.value
            elif sample.name.endswith("_sum"):
                pauses.seconds += sample.value
            elif sample.name.endswith("_bucket") and sample.labels["le"] == "0.025":
                pauses.over_25_ms -= sample.value
    return pauses


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def batchgate_runs(directory: Path, upstream: str, count: int, width: int) -> dict[str, BatchRun]:
    """One batch on each route of one `batchgate serve`, the engine and the routes at `width`."""
    config = directory / "routes.toml"
    route = f'base_url = "{upstream}{{}}"\napi_key_env = "BENCH_UPSTREAM_KEY"\n'
    route += f"max_concurrency = {width}\n"
    config.write_text(
        f'[[routes]]\nmodel = "{MODEL}"\nbackend = "anthropic"\n{route.format("")}\n'
        f'[[routes]]\nmodel = "{OPENAI_MODEL}"\nbackend = "openai"\n{route.format("/v1")}'
    )
    port = free_port()
    env = {
        **os.environ,
        "BATCHGATE_DATABASE_URL": f"sqlite:///{directory / 'batchgate.db'}",
        "BATCHGATE_CONFIG": str(config),
        "BATCHGATE_API_KEYS": KEY,
        "BATCHGATE_MAX_CONCURRENCY": str(width),
        "BENCH_UPSTREAM_KEY": KEY,
    }
    command = [sys.executable, "-m", "batchgate", "serve", "--port", str(port)]
    server = subprocess.Popen([*command, "--log-level", "warning"], env=env)
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_serving(f"{base_url}/v1/messages/batches", server)
        client = anthropic.Anthropic(base_url=base_url, api_key=KEY, max_retries=0)
        return {
            backend: one_batch(client, base_url, server.pid, model, count)
            for backend, model in (("anthropic", MODEL), ("openai", OPENAI_MODEL))
        }
    finally:
        server.terminate()
        server.wait()


def one_batch(
    client: anthropic.Anthropic, base_url: str, pid: int, model: str, count: int
) -> BatchRun:
    requests = [
        {"custom_id": f"r-{index}", "params": {**message_params(index), "model": model}}
        for index in range(count)
    ]
    cpu_before = cpu_seconds(pid)
    gc_before = gc_pauses(base_url)
    batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    run = BatchRun(rate=0.0, cpu_seconds=0.0)
    while batch.processing_status != "ended":
        time.sleep(0.1)
        run.rss_mib.append(rss_mib(pid))
        asked = time.perf_counter()
        batch = client.messages.batches.retrieve(batch.id)
        run.retrieve_ms.append((time.perf_counter() - asked) * 1000)
    run.cpu_seconds = cpu_seconds(pid) - cpu_before
    run.gc_pauses = gc_pauses(base_url) - gc_before
    succeeded = batch.request_counts.succeeded
    if succeeded != count:
        failed = next(
            line
            for line in client.messages.batches.results(batch.id)
            if line.result.type != "succeeded"
        )
        raise RuntimeError(f"only {succeeded} of {count} succeeded; {failed}")
    assert batch.ended_at is not None
    run.rate = count / (batch.ended_at - batch.created_at).total_seconds()
    return run


def p99(samples: list[float]) -> float:
    if len(samples) < 2:
        return samples[0] if samples else 0.0
    return statistics.quantiles(samples, n=100)[98]


def baseline(
    loop: Callable[[str, int, int], Awaitable[float]], upstream: str, count: int, width: int
) -> float:
    """The loop's requests/s; 0 when it failed (named on stderr): the others still run."""
    try:
        return asyncio.run(loop(upstream, count, width))
    except Exception as failure:
        print(f"{loop.__name__} failed: {failure!r}", file=sys.stderr)
        return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--width", type=int, default=1024, help="requests in flight")
    parser.add_argument("--latency", type=float, default=1.0, help="upstream seconds a request")
    parser.add_argument("--requests", type=int, help="requests per run (10 x width)")
    parser.add_argument("--serve-upstream", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        serve_upstream(args.serve_upstream, args.latency)
        return
    count = args.requests or 10 * args.width

    port = free_port()
    upstream_url = f"http://127.0.0.1:{port}"
    upstream = subprocess.Popen(
        [sys.executable, __file__, "--serve-upstream", str(port), "--latency", str(args.latency)]
    )
    loops: dict[str, Callable[[str, int, int], Awaitable[float]]] = {
        "SDK loop, httpx (default)": sdk_loop_httpx,
        "SDK loop, aiohttp": sdk_loop_aiohttp,
        "plain aiohttp loop": plain_aiohttp_loop,
    }
    try:
        wait_until_serving(f"{upstream_url}/ready", upstream)
        rates = {
            name: baseline(loop, upstream_url, count, args.width) for name, loop in loops.items()
        }
        with tempfile.TemporaryDirectory() as scratch:
            batches = batchgate_runs(Path(scratch), upstream_url, count, args.width)
    finally:
        upstream.terminate()
        upstream.wait()

    ideal = args.width / args.latency
    sdk_aiohttp = rates["SDK loop, aiohttp"] or math.nan
    print(f"{count} requests, width {args.width}, upstream latency {args.latency:g} s")
    print(f"{'':<28}{'req/s':>9}{'of ideal':>10}{'of SDK-aiohttp':>16}")
    print(f"{'ideal':<28}{ideal:>9.1f}{1:>10.2f}")
    for name, rate in rates.items():
        print(f"{name:<28}{rate:>9.1f}{rate / ideal:>10.2f}{rate / sdk_aiohttp:>16.2f}")
    for backend, run in batches.items():
        name = f"batchgate, {backend} route"
        print(f"{name:<28}{run.rate:>9.1f}{run.rate / ideal:>10.2f}{run.rate / sdk_aiohttp:>16.2f}")
    print(
        f"{'batchgate server':<28}{'CPU µs/req':>11}"
        f"{'RSS MiB first/max/last':>24}{'retrieve p99':>14}{'GC pauses n/ms/>25 ms':>24}"
    )
    for backend, run in batches.items():
        samples = run.rss_mib or [0.0]
        rss = f"{samples[0]:.0f}/{max(samples):.0f}/{samples[-1]:.0f}"
        pauses = run.gc_pauses or GcPauses(0.0, 0.0, 0.0)
        gc = f"{pauses.count:.0f}/{pauses.seconds * 1000:.0f}/{pauses.over_25_ms:.0f}"
        print(
            f"{backend:<28}{run.cpu_seconds / count * 1e6:>11.0f}{rss:>24}"
            f"{p99(run.retrieve_ms):>11.1f} ms{gc:>24}"
        )


if __name__ == "__main__":
    main()
