"""Requests that fail on a bug (an unexpected exception) as the log tells them: the first with its
traceback, then at most one a minute, each saying how many more failed in between. A bug that
hits 100,000 requests writes a few tracebacks, not 100,000; each request's result says it
failed either way."""

import logging
import time
from collections.abc import Callable

log = logging.getLogger("batchgate.engine")

REPORT_SECONDS = 60.0


class InternalErrors:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last_report: float | None = None
        self._unreported = 0

    def report(self, custom_id: str, route: str) -> None:
        """Call in the `except` block that caught the exception."""
        now = self._clock()
        if self._last_report is not None and now - self._last_report < REPORT_SECONDS:
            self._unreported += 1
            return
        more = f" ({self._unreported} more since the last such line)" if self._unreported else ""
        log.exception(
            "backend failed unexpectedly on %s%s", custom_id, more, extra={"route": route}
        )
        self._last_report = now
        self._unreported = 0
