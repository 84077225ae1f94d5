"""The dashboard's live updates: the events streams of the API (service/event_streams.py), for
the signed-in cookie's caller instead of a key header.

A page opens one stream (static/ui.js) and refreshes its moving part when an event arrives. The
page names the workspace's latest event when it was rendered (`after`), so an event between the
rendering and the stream's start is not missed; a reconnecting EventSource's Last-Event-ID
takes precedence.
"""

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from batchgate.api.events import SSE_HEADERS
from batchgate.web.session import app_state, caller


async def _after(request: Request, owner: str) -> int:
    for given in (request.headers.get("last-event-id"), request.query_params.get("after")):
        if given and given.isascii() and given.isdigit() and len(given) <= 18:
            return int(given)
    return await app_state(request).events.latest(owner)


def _stream(
    request: Request, owner: str, after: int, batch_id: str | None = None, ended: bool = False
) -> Response:
    events = app_state(request).events.stream(owner, after, batch_id, ended)
    return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)


async def workspace_events(request: Request) -> Response:
    who = await caller(request)
    return _stream(request, who.owner, await _after(request, who.owner))


async def batch_events(request: Request) -> Response:
    who = await caller(request)
    after = await _after(request, who.owner)
    batch = await app_state(request).batches.get(who.owner, request.path_params["batch_id"])
    return _stream(request, who.owner, after, batch.id, batch.status == "ended")


async def openai_batch_events(request: Request) -> Response:
    who = await caller(request)
    after = await _after(request, who.owner)
    row, batch = await app_state(request).openai.get_batch(
        who.owner, request.path_params["batch_id"]
    )
    return _stream(request, who.owner, after, row.id, batch is None or batch.status == "ended")
