"""One log line per HTTP request: method, path, status, duration and request id.

Never bodies, query strings or headers, which carry prompts and keys. Probes (/healthz,
/readyz) and scrapes (/metrics), which arrive every few seconds, are logged at debug level only.
Each request is also timed in `batchgate_http_request_duration_seconds`, labeled by the route's
path template (`/v1/messages/batches/{batch_id}`), never by the path with its ids.
"""

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from batchgate.observability import metrics

log = logging.getLogger("batchgate.http")

PROBES = frozenset({"/healthz", "/readyz", "/metrics"})
UNMATCHED = "<unmatched>"


class AccessLogMiddleware:
    """Runs inside RequestIdMiddleware, whose id it logs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            duration = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            metrics.HTTP_DURATION.labels(scope["method"], template, str(status)).observe(duration)
            path = scope["path"]
            log.log(
                logging.DEBUG if path in PROBES else logging.INFO,
                "%s %s %d",
                scope["method"],
                path,
                status,
                extra={
                    "method": scope["method"],
                    "path": path,
                    "status": status,
                    "duration_ms": round(duration * 1000, 1),
                    "request_id": scope["state"]["request_id"],
                },
            )
