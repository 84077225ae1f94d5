"""Splitting requests into batches that each fit the API's limits."""

import json
from collections.abc import Iterable

from batchgate.cli.client.failures import CommandFailure
from batchgate.cli.client.request_file import BatchRequest

MAX_REQUESTS_PER_BATCH = 100_000
# Anthropic states "256 MB"; the decimal reading is the smaller, so batches fit either way.
MAX_BATCH_BYTES = 256_000_000
_EMPTY_BODY_BYTES = len('{"requests": []}')
_SEPARATOR_BYTES = len(", ")


def encoded_size(request: BatchRequest) -> int:
    """An upper bound of the bytes `request` takes in a create body.

    SDK versions encode differently (spaces or not, \\u escapes or UTF-8); json.dumps's defaults
    give the longest of these encodings, so a body measured this way is never larger when sent.
    """
    return len(json.dumps(request)) + _SEPARATOR_BYTES


def split_into_batches(requests: Iterable[BatchRequest]) -> list[list[BatchRequest]]:
    """Consecutive groups of at most MAX_REQUESTS_PER_BATCH requests and MAX_BATCH_BYTES."""
    batches: list[list[BatchRequest]] = []
    current: list[BatchRequest] = []
    current_bytes = _EMPTY_BODY_BYTES
    for request in requests:
        size = encoded_size(request)
        if _EMPTY_BODY_BYTES + size > MAX_BATCH_BYTES:
            raise CommandFailure(
                f"request {request['custom_id']!r} alone takes {size:,} bytes, over the"
                f" {MAX_BATCH_BYTES:,}-byte limit of a batch; nothing was sent"
            )
        if current and (
            len(current) == MAX_REQUESTS_PER_BATCH or current_bytes + size > MAX_BATCH_BYTES
        ):
            batches.append(current)
            current, current_bytes = [], _EMPTY_BODY_BYTES
        current.append(request)
        current_bytes += size
    if current:
        batches.append(current)
    return batches
