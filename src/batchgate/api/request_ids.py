"""Gives every request an id, in `request.state.request_id` and the `request-id` header
(and `x-request-id`, as OpenAI names it)."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from batchgate.lifecycle.ids import new_request_id


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"request-id", request_id.encode()),
                    # Where the openai SDK reads it (`_request_id`).
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        await self.app(scope, receive, send_with_id)
