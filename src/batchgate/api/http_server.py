"""uvicorn, with a drain between SIGTERM (or SIGINT) and its graceful shutdown.

uvicorn alone, on the signal, stops listening and at once closes every keep-alive connection
that is idle: a create sent on one just then meets a closed socket, and its client cannot tell
whether the batch was taken. Here the first signal starts a drain instead:

- the listening socket closes, so new connections are refused and a balancer moves on;
- connections already open stay open: a create on one is answered 503 with `retry-after`
  (api/batches.py), reads (retrieve, list, results) are served, /readyz answers 503;
- the engine leases no more work and finishes what it runs (engine/worker.py).

The drain ends once no request is in flight, or after `drain_seconds`; then uvicorn's own
shutdown closes the connections, gives what still runs AFTER_DRAIN_SECONDS, and runs the app's
shutdown. A second signal ends the drain at once.
"""

import time
from collections.abc import Callable
from types import FrameType

import uvicorn
from starlette.types import ASGIApp

AFTER_DRAIN_SECONDS = 1


class DrainingServer(uvicorn.Server):
    def __init__(
        self, config: uvicorn.Config, begin_drain: Callable[[], None], drain_seconds: float
    ) -> None:
        super().__init__(config)
        self._begin_drain = begin_drain
        self._drain_seconds = drain_seconds
        self._signalled = False
        self._drain_ends: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # A signal handler: it only takes note; the next tick of uvicorn's main loop (every
        # 0.1 s, on the event loop) starts the drain.
        if self._signalled:
            super().handle_exit(sig, frame)
        self._signalled = True

    async def on_tick(self, counter: int) -> bool:
        if self._signalled and self._drain_ends is None:
            self._drain_ends = time.monotonic() + self._drain_seconds
            for listener in self.servers:
                listener.close()
            self._begin_drain()
        if self._drain_ends is not None and (
            not self.server_state.tasks or time.monotonic() >= self._drain_ends
        ):
            self.should_exit = True
        return await super().on_tick(counter)


def serve(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    log_level: str,
    drain_seconds: float,
    begin_drain: Callable[[], None],
) -> None:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        log_config=None,  # uvicorn's own lines go through logs.configure_logging's handler
        timeout_graceful_shutdown=AFTER_DRAIN_SECONDS,
    )
    DrainingServer(config, begin_drain, drain_seconds).run()
