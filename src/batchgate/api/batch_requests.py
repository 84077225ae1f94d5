"""An extension: a batch's requests as submitted, optionally only those with a given result.

`GET /v1/messages/batches/{id}/requests?result_type=errored&result_type=expired` streams JSONL
lines of `{"custom_id", "params"}`, so that failed requests can be submitted again (the
`batchgate retry` command) without the original file.
"""

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from batchgate.api.batches import context
from batchgate.api.result_query import result_types


async def batch_requests(request: Request) -> Response:
    state, owner = await context(request)
    wanted = result_types(request)
    lines = await state.batches.requests(owner, request.path_params["batch_id"], wanted)
    return StreamingResponse(lines, media_type="application/x-jsonl")


routes = [
    Route("/v1/messages/batches/{batch_id}/requests", batch_requests, methods=["GET"]),
]
