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
  latency of the retrieves polled meanwhile; the requests the upstream held meanwhile (how full
  the engine kept the width) and those waiting on the routes (whether the engine had enough leased
to keep it full); and the garbage collections meanwhile, each of which pauses the
  whole server (`batchgate_gc_pause_seconds`).
`--only` runs some of these; `--postgres` runs batchgate on a fresh PostgreSQL database, the API
(`serve --no-worker`) and the engine (`batchgate worker`) each in a process of its own.
"""

import argparse
import asyncio
import contextlib
import itertools
import math
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

import aiohttp
import anthropic
import httpx2
import orjson
import psycopg
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql
from saturation import KEY, MODEL, free_port, message_params, wait_until_serving

from batchgate.storage.migrations.postgres import migrate

POSTGRES_ADMIN_URL = os.environ.get(
    "BATCHGATE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)

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
    the canned answer for its path `latency` seconds later. Keep-alive; no validation.
    `GET /in-flight` answers at once with the requests of every connection awaiting answers."""

    in_flight = 0

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
            if method != b"post":
                # The readiness probe, and the count of requests in flight, answered at once.
                self._write(_answer(b"%d" % LeanUpstream.in_flight), in_flight=False)
                continue
            answer = ANSWERS.get(path.split(b"?")[0], ANSWERS[b"/v1/messages"])
            LeanUpstream.in_flight += 1
            asyncio.get_running_loop().call_later(self._latency, self._write, answer)

    def _write(self, answer: bytes, in_flight: bool = True) -> None:
        LeanUpstream.in_flight -= in_flight
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
    upstream_in_flight: list[int] = field(default_factory=list)
    queued_on_routes: list[float] = field(default_factory=list)
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


def queued_on_routes(base_url: str) -> float | None:
    """Requests leased and waiting for their turn on a route (`serve` running the engine): while
    some wait, the engine has leased enough to keep the width full."""
    text = httpx2.get(f"{base_url}/metrics").text
    for family in text_string_to_metric_families(text):
        if family.name == "batchgate_requests_queued":
            return sum(sample.value for sample in family.samples)
    return None


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def postgres_database() -> Iterator[str]:
    """The URL of a fresh, migrated database on the local PostgreSQL, dropped afterwards."""
    name = f"batchgate_wide_{secrets.token_hex(4)}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = urlsplit(POSTGRES_ADMIN_URL)._replace(path=f"/{name}").geturl()
        migrate(url)
        yield url
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def wait_until_listening(database_url: str, worker: subprocess.Popen[bytes]) -> None:
    """Until the worker waits for work: its LISTEN connection is open."""
    with psycopg.connect(database_url, autocommit=True) as db:
        for _ in range(1200):
            if worker.poll() is not None:
                raise RuntimeError(f"{worker.args!r} exited with {worker.returncode}")
            [(listening,)] = db.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = 'batchgate-listener'"
            ).fetchall()
            if listening:
                return
            time.sleep(0.05)
    raise RuntimeError("the worker did not start")


def batchgate_runs(
    directory: Path,
    upstream: str,
    count: int,
    width: int,
    backends: list[str],
    database_url: str | None,
) -> dict[str, BatchRun]:
    """One batch on each route in `backends` of one `batchgate serve`, the engine and the
    routes at `width`; with `database_url` (PostgreSQL), the engine in a `batchgate worker`."""
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
        "BATCHGATE_DATABASE_URL": database_url or f"sqlite:///{directory / 'batchgate.db'}",
        "BATCHGATE_CONFIG": str(config),
        "BATCHGATE_API_KEYS": KEY,
        "BATCHGATE_MAX_CONCURRENCY": str(width),
        "BENCH_UPSTREAM_KEY": KEY,
    }
    batchgate = [sys.executable, "-m", "batchgate"]
    serve = [*batchgate, "serve", "--port", str(port), "--log-level", "warning"]
    processes = [subprocess.Popen([*serve, *(["--no-worker"] if database_url else [])], env=env)]
    if database_url:
        processes.append(
            subprocess.Popen([*batchgate, "worker", "--log-level", "warning"], env=env)
        )
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_serving(f"{base_url}/v1/messages/batches", processes[0])
        if database_url:
            wait_until_listening(database_url, processes[1])
        client = anthropic.Anthropic(base_url=base_url, api_key=KEY, max_retries=0)
        models = {"anthropic": MODEL, "openai": OPENAI_MODEL}
        pids = [process.pid for process in processes]
        return {
            backend: one_batch(client, base_url, upstream, pids, models[backend], count)
            for backend in backends
        }
    finally:
        for process in processes:
            process.terminate()
            process.wait()


def one_batch(
    client: anthropic.Anthropic,
    base_url: str,
    upstream: str,
    pids: list[int],
    model: str,
    count: int,
) -> BatchRun:
    """The batch's figures; CPU and RSS summed over the server's processes (API, engine).
    GC pauses are the API process's, the one that answers retrieves."""
    requests = [
        {"custom_id": f"r-{index}", "params": {**message_params(index), "model": model}}
        for index in range(count)
    ]
    cpu_before = sum(map(cpu_seconds, pids))
    gc_before = gc_pauses(base_url)
    batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    run = BatchRun(rate=0.0, cpu_seconds=0.0)
    for turn in itertools.count():
        if batch.processing_status == "ended":
            break
        time.sleep(0.1)
        run.rss_mib.append(sum(map(rss_mib, pids)))
        engine_here = len(pids) == 1
        if engine_here and turn % 10 == 0 and (queued := queued_on_routes(base_url)) is not None:
            run.queued_on_routes.append(queued)
        run.upstream_in_flight.append(int(httpx2.get(f"{upstream}/in-flight").text))
        asked = time.perf_counter()
        batch = client.messages.batches.retrieve(batch.id)
        run.retrieve_ms.append((time.perf_counter() - asked) * 1000)
    run.cpu_seconds = sum(map(cpu_seconds, pids)) - cpu_before
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


LOOPS: dict[str, tuple[str, Callable[[str, int, int], Awaitable[float]]]] = {
    "sdk-httpx": ("SDK loop, httpx (default)", sdk_loop_httpx),
    "sdk-aiohttp": ("SDK loop, aiohttp", sdk_loop_aiohttp),
    "plain-aiohttp": ("plain aiohttp loop", plain_aiohttp_loop),
}
BACKENDS = ("anthropic", "openai")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--width", type=int, default=1024, help="requests in flight")
    parser.add_argument("--latency", type=float, default=1.0, help="upstream seconds a request")
    parser.add_argument("--requests", type=int, help="requests per run (10 x width)")
    parser.add_argument(
        "--only",
        default=",".join([*LOOPS, *BACKENDS]),
        help="comma-separated runs, of: %(default)s",
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="batchgate on PostgreSQL (BATCHGATE_BENCH_POSTGRES_URL), API and engine apart",
    )
    parser.add_argument("--serve-upstream", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        serve_upstream(args.serve_upstream, args.latency)
        return
    count = args.requests or 10 * args.width
    only = args.only.split(",")
    unknown = set(only) - {*LOOPS, *BACKENDS}
    if unknown:
        parser.error(f"--only: unknown runs {', '.join(sorted(unknown))}")

    port = free_port()
    upstream_url = f"http://127.0.0.1:{port}"
    upstream = subprocess.Popen(
        [sys.executable, __file__, "--serve-upstream", str(port), "--latency", str(args.latency)]
    )
    backends = [backend for backend in BACKENDS if backend in only]
    try:
        wait_until_serving(f"{upstream_url}/ready", upstream)
        rates = {
            name: baseline(loop, upstream_url, count, args.width)
            for key, (name, loop) in LOOPS.items()
            if key in only
        }
        with tempfile.TemporaryDirectory() as scratch, contextlib.ExitStack() as stack:
            database_url = stack.enter_context(postgres_database()) if args.postgres else None
            batches = batchgate_runs(
                Path(scratch), upstream_url, count, args.width, backends, database_url
            )
    finally:
        upstream.terminate()
        upstream.wait()

    ideal = args.width / args.latency
    sdk_aiohttp = rates.get("SDK loop, aiohttp") or math.nan
    print(f"{count} requests, width {args.width}, upstream latency {args.latency:g} s")
    print(f"{'':<28}{'req/s':>9}{'of ideal':>10}{'of SDK-aiohttp':>16}")
    print(f"{'ideal':<28}{ideal:>9.1f}{1:>10.2f}")
    for name, rate in rates.items():
        print(f"{name:<28}{rate:>9.1f}{rate / ideal:>10.2f}{rate / sdk_aiohttp:>16.2f}")
    for backend, run in batches.items():
        name = f"batchgate, {backend} route"
        print(f"{name:<28}{run.rate:>9.1f}{run.rate / ideal:>10.2f}{run.rate / sdk_aiohttp:>16.2f}")
    print(
        f"{'batchgate server':<28}{'CPU µs/req':>11}{'RSS MiB first/max/last':>24}"
        f"{'retrieve p50/p99':>19}{'GC pauses n/ms/>25 ms':>24}{'upstream held':>15}"
        f"{'queued':>8}"
    )
    for backend, run in batches.items():
        samples = run.rss_mib or [0.0]
        rss = f"{samples[0]:.0f}/{max(samples):.0f}/{samples[-1]:.0f}"
        pauses = run.gc_pauses or GcPauses(0.0, 0.0, 0.0)
        gc = f"{pauses.count:.0f}/{pauses.seconds * 1000:.0f}/{pauses.over_25_ms:.0f}"
        retrieve = f"{statistics.median(run.retrieve_ms or [0.0]):.1f}/{p99(run.retrieve_ms):.1f}"
        # How full the width was kept: the median of the requests the upstream held.
        held = statistics.median(run.upstream_in_flight or [0])
        # And the median of those waiting on the routes, sampled every second.
        queued = statistics.median(run.queued_on_routes or [math.nan])
        print(
            f"{backend:<28}{run.cpu_seconds / count * 1e6:>11.0f}{rss:>24}"
            f"{retrieve:>16} ms{gc:>24}{held / args.width:>15.2f}{queued / args.width:>8.2f}"
        )


if __name__ == "__main__":
    main()
