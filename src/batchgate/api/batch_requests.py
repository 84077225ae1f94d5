"""An extension: a batch's requests as submitted, optionally only those with a given result.

`GET /v1/messages/batches/{id}/requests?result_type=errored&result_type=expired` streams JSONL
lines of `{"custom_id", "params"}`, so that failed requests can be submitted again (the
`batchgate retry` command) without the original file.
"""

from collections.abc import Iterator

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from batchgate.api.batches import context, existing_batch, stream_from_thread
from batchgate.api.errors import ApiError
from batchgate.storage.base import StoredChunk

RESULT_TYPES = ("succeeded", "errored", "canceled", "expired")


def _result_types(lines: bytes) -> dict[str, str]:
    types = {}
    for line in lines.splitlines():
        parsed = orjson.loads(line)
        types[parsed["custom_id"]] = parsed["result"]["type"]
    return types


def _export(chunks: Iterator[StoredChunk], wanted: frozenset[str]) -> Iterator[bytes]:
    for chunk in chunks:
        custom_ids = orjson.loads(chunk.custom_ids)
        params = orjson.loads(chunk.params)
        types = _result_types(chunk.result_lines) if wanted else {}
        lines = [
            orjson.dumps({"custom_id": custom_id, "params": request_params})
            for custom_id, request_params in zip(custom_ids, params, strict=True)
            if not wanted or types.get(custom_id) in wanted
        ]
        if lines:
            yield b"\n".join(lines) + b"\n"


async def batch_requests(request: Request) -> Response:
    state, owner = await context(request)
    batch = await existing_batch(state, owner, request.path_params["batch_id"])
    if batch.archived_at is not None:
        raise ApiError(
            404, f"The requests of batch {batch.id} were archived after the retention period."
        )
    wanted = frozenset(
        kind
        for value in request.query_params.getlist("result_type")
        for kind in value.split(",")
        if kind
    )
    unknown = sorted(wanted - set(RESULT_TYPES))
    if unknown:
        raise ApiError(400, f"result_type: {unknown[0]!r} is not one of {', '.join(RESULT_TYPES)}")
    lines = _export(state.store.iter_request_chunks(batch.id), wanted)
    return StreamingResponse(stream_from_thread(lines), media_type="application/x-jsonl")


routes = [
    Route("/v1/messages/batches/{batch_id}/requests", batch_requests, methods=["GET"]),
]
