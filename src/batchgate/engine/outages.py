"""How the engine rides out a database that is away (restarting, unreachable, its disk full).

Store calls that raise StoreUnavailable are retried with a growing delay. The engine logs once
when the database goes away and once when it is back, however many calls wait meanwhile.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread

from batchgate.storage.base import StoreUnavailable

log = logging.getLogger("batchgate.engine")

Result = TypeVar("Result")
# Short at first, for a dropped connection the pool replaces at once; then a steady pace that
# costs the database nothing while it restarts.
RETRY_DELAYS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)


def retry_delay(attempt: int) -> float:
    return RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]


class Outages:
    """The database's availability as one engine sees it: away from the first call that finds
    it unavailable until every call that did has gone through. Calls that never failed say
    nothing: reads may well succeed while writes fail on a full disk."""

    def __init__(self) -> None:
        self._since: float | None = None
        self._waiting = 0

    def began(self, error: StoreUnavailable) -> None:
        """A caller found the database unavailable; it calls `ended` once it stops waiting."""
        self._waiting += 1
        if self._since is None:
            self._since = time.monotonic()
            log.warning("%s; the engine waits for it and retries", error)

    def ended(self, recovered: bool = True) -> None:
        """A caller stopped waiting: its call went through, or (not `recovered`) it gave up."""
        self._waiting -= 1
        if self._waiting == 0 and self._since is not None:
            if recovered:
                log.warning(
                    "the database is back after %.1f s; the engine resumes",
                    time.monotonic() - self._since,
                )
            self._since = None

    async def retry(self, call: Callable[..., Result], *args: object) -> Result:
        """Runs a blocking store call in a thread until the database lets it through.

        Only calls that are safe to repeat belong here: a commit whose answer was lost may have
        gone through.
        """
        attempt = 0
        try:
            while True:
                try:
                    result = await anyio.to_thread.run_sync(call, *args)
                except StoreUnavailable as error:
                    if attempt == 0:
                        self.began(error)
                    await asyncio.sleep(retry_delay(attempt))
                    attempt += 1
                    continue
                break
        except BaseException:
            if attempt:
                self.ended(recovered=False)
            raise
        if attempt:
            self.ended()
        return result
