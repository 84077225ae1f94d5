"""Hosts an engine inside the API process, on its own thread and event loop.

Sharing the API's event loop, the engine's turns (and the GIL hand-offs of its database threads)
held API requests back by tens of milliseconds under full load. On its own thread it competes
only for the GIL, which Python hands over every switch interval (set by the engine, see
`GIL_SWITCH_SECONDS` in engine/worker.py).
"""

import asyncio
import logging
import threading

import anyio.to_thread

from batchgate.engine.worker import Engine

log = logging.getLogger("batchgate.engine")


class EngineThread:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._loop = asyncio.new_event_loop()
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name="batchgate-engine", daemon=True)

    def start(self) -> None:
        self._thread.start()

    async def stop(self) -> None:
        """Begins the engine's graceful shutdown and waits until it has released its work."""
        self._engine.stop()
        await anyio.to_thread.run_sync(self._finished.wait)

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._engine.run())
        except Exception:
            log.exception("the engine stopped unexpectedly")
        finally:
            self._loop.close()
            self._finished.set()
