"""One log line per HTTP request: method, path, status, duration and request id.

Never bodies, query strings or headers, which carry prompts and keys. Probes (/healthz,
/readyz), which load balancers send every few seconds, are logged at debug level only.
"""

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("batchgate.http")

PROBES = frozenset({"/healthz", "/readyz"})


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
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    "request_id": scope["state"]["request_id"],
                },
            )
