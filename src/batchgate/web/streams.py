"""The dashboard's live updates: the events streams of the API (service/event_streams.py), for
the signed-in cookie's caller instead of a key header.

A page opens one stream (static/ui.js) and refreshes its moving part when an event arrives.
Each stream starts at the workspace's latest event: a page is rendered fresh when it opens or
comes back into view, so it needs only what happens next.
"""

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from batchgate.api.events import SSE_HEADERS
from batchgate.web.session import app_state, caller


def _stream(request: Request, owner: str, after: int, batch_id: str | None = None) -> Response:
    events = app_state(request).events.stream(owner, after, batch_id)
    return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)


async def workspace_events(request: Request) -> Response:
    who = await caller(request)
    return _stream(request, who.owner, await app_state(request).events.latest(who.owner))


async def batch_events(request: Request) -> Response:
    who = await caller(request)
    state = app_state(request)
    after = await state.events.latest(who.owner)
    batch = await state.batches.get(who.owner, request.path_params["batch_id"])
    if batch.status == "ended":
        # Nothing more will happen: 204 tells EventSource not to reconnect.
        return Response(status_code=204)
    return _stream(request, who.owner, after, batch.id)
