"""What one upstream request costs a backend, at width: CPU µs per request, and the objects the
garbage collector tracks per request in flight (each is walked by every collection that comes
while the request waits; docs/benchmarks.md, "Wide upstreams").

In this process, without the engine: `--width` calls of the `anthropic` or `openai` backend at
once against bench/wide.py's lean upstream (another process), `--rounds` times, after a round
that opens the pool's connections. CPU is this process's (the upstream's is not counted);
objects are counted while a round's requests are all in flight (not in the CPU time).
"""

import argparse
import asyncio
import gc
import statistics
import subprocess
import sys
import time
from typing import Any

from saturation import KEY, free_port, message_params, wait_until_serving

from batchgate.backends.anthropic_upstream import AnthropicUpstreamBackend
from batchgate.backends.openai_chat import OpenAIChatBackend
from batchgate.lifecycle.params import validate_params


def backend(name: str, upstream: str, width: int) -> Any:
    if name == "openai":
        return OpenAIChatBackend(f"{upstream}/v1", api_key=KEY, connections=width)
    return AnthropicUpstreamBackend(upstream, api_key=KEY, connections=width)


async def rounds(name: str, upstream: str, width: int, latency: float, count: int) -> None:
    client = backend(name, upstream, width)
    requests = [validate_params(message_params(index)) for index in range(width)]
    await asyncio.gather(*(client.create_message(params) for params in requests))
    cpu_per_request: list[float] = []
    objects_per_request: list[float] = []
    # As in the engine (engine/gc_pacing.py), no collection runs while requests are in flight.
    gc.disable()
    for _ in range(count):
        gc.collect()
        tracked_before = len(gc.get_objects())
        cpu_before = time.process_time()
        calls = asyncio.gather(*(client.create_message(params) for params in requests))
        # Every request sent and waiting for its answer.
        await asyncio.sleep(latency / 2)
        counting_began = time.process_time()
        objects_per_request.append((len(gc.get_objects()) - tracked_before) / width)
        counting = time.process_time() - counting_began
        await calls
        cpu = time.process_time() - cpu_before - counting
        cpu_per_request.append(cpu / width * 1e6)
    gc.enable()
    await client.aclose()
    print(
        f"{name}: width {width}, {count} rounds: CPU µs/request median"
        f" {statistics.median(cpu_per_request):.0f} (min {min(cpu_per_request):.0f});"
        f" tracked objects per request in flight median"
        f" {statistics.median(objects_per_request):.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=("anthropic", "openai"), default="anthropic")
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--latency", type=float, default=1.0, help="upstream seconds a request")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    port = free_port()
    upstream_url = f"http://127.0.0.1:{port}"
    wide = str(__file__).replace("upstream_call.py", "wide.py")
    upstream = subprocess.Popen(
        [sys.executable, wide, "--serve-upstream", str(port), "--latency", str(args.latency)]
    )
    try:
        wait_until_serving(f"{upstream_url}/ready", upstream)
        asyncio.run(rounds(args.backend, upstream_url, args.width, args.latency, args.rounds))
    finally:
        upstream.terminate()
        upstream.wait()


if __name__ == "__main__":
    main()
