"""The event streams (docs/events.md): a batch's at /v1/messages/batches/{id}/events (an OpenAI
batch's at /v1/batches/{id}/events), the whole workspace's at /v1/events, as Server-Sent Events
resumed with Last-Event-ID."""

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from batchgate.api.batches import context
from batchgate.api.errors import ApiError

SSE_HEADERS = {
    "cache-control": "no-store",
    # Proxies (nginx) would otherwise hold events back in their buffers.
    "x-accel-buffering": "no",
}


def _last_event_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id")
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise ApiError(
            400, "Last-Event-ID: expected the number of an event (the `id:` of a stream)."
        )
    return int(raw)


def _stream(events: AsyncIterator[bytes]) -> Response:
    return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)


async def batch_events(request: Request) -> Response:
    state, owner = await context(request)
    batch = await state.batches.get(owner, request.path_params["batch_id"])
    after = _last_event_id(request) or 0
    return _stream(state.events.stream(owner, after, batch.id, batch.status == "ended"))


async def openai_batch_events(request: Request) -> Response:
    state, owner = await context(request)
    row, batch = await state.openai.get_batch(owner, request.path_params["id"])
    after = _last_event_id(request) or 0
    # A batch failed at validation has no batch row: its batch.failed is its only event.
    ended = batch is None or batch.status == "ended"
    return _stream(state.events.stream(owner, after, row.id, ended))


async def workspace_events(request: Request) -> Response:
    state, owner = await context(request)
    after = _last_event_id(request)
    if after is None:
        # A new subscriber hears what happens from now on; the past is for those resuming.
        after = await state.events.latest(owner)
    return _stream(state.events.stream(owner, after))


routes = [
    Route("/v1/messages/batches/{batch_id}/events", batch_events, methods=["GET"]),
    Route("/v1/batches/{id}/events", openai_batch_events, methods=["GET"]),
    Route("/v1/events", workspace_events, methods=["GET"]),
]
