"""The HTTP client an upstream backend's SDK sends with: the SDK's own aiohttp transport, one
pool per route, as large as the route is wide.

The SDKs' default transport (httpx) spends CPU per request that grows with the connections
open: at a thousand in flight it, not the upstream, set the pace (docs/benchmarks.md, "Wide
upstreams"). Both SDKs ship an aiohttp transport behind the same client, so requests, answers
and errors keep the SDKs' types, which backends/upstream_errors.py reads.
"""

from typing import Any

import aiohttp
import httpx2

# The engine's default width (BATCHGATE_MAX_CONCURRENCY), for a backend built outside a route.
DEFAULT_POOL_SIZE = 256


def pooled_client(sdk_client_class: type[httpx2.AsyncClient], size: int) -> httpx2.AsyncClient:
    """`sdk_client_class` (the SDK's `DefaultAioHttpClient`) with a pool of `size` connections,
    every one of them kept alive between requests: a route at its width reuses them all rather
    than connecting anew for most requests."""
    limits = httpx2.Limits(max_connections=size, max_keepalive_connections=size)
    client: httpx2.AsyncClient = sdk_client_class(limits=limits)
    return client


def failed_to_connect(failure: BaseException) -> bool:
    """Whether a timeout an SDK reports is a connection that failed at once (refused, reset,
    unknown host): OpenAI's aiohttp transport reports those as connect timeouts."""
    cause: Any = failure.__cause__
    while cause is not None:
        if isinstance(cause, aiohttp.ClientConnectionError):
            return not isinstance(cause, TimeoutError)
        cause = cause.__cause__
    return False
