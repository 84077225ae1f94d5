"""A route's upstream in trouble, as the log tells it: a line when its calls start failing, one
every REPORT_SECONDS at most while they keep failing, and one when it answers again.

Trouble begins with a call that fails transiently (an overload, a 5xx, a timeout, a reset) and
is over at the first success QUIET_SECONDS or more after the last failure. However many calls
fail meanwhile, retried or not, the log gets those few lines: a storm over 100,000 requests
costs no more lines than one over ten. A request's own failure (a 400) is no trouble of the
route's: its result says why.
"""

import logging
import time
from collections import Counter
from collections.abc import Callable

from batchgate.errors import RequestError

log = logging.getLogger("batchgate.engine")

QUIET_SECONDS = 30.0
REPORT_SECONDS = 60.0


class UpstreamTrouble:
    """One route's transient failures and successes, told to the log a few lines at a time."""

    def __init__(
        self, route: str, max_concurrency: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._route = route
        self._max_concurrency = max_concurrency
        self._clock = clock
        self._since: float | None = None
        self._last_failure = 0.0
        self._last_report = 0.0
        self._failures: Counter[str] = Counter()
        self._retried = 0
        self._succeeded = 0

    def failed(
        self, error: RequestError, *, retried: bool, concurrency: int, paused: float | None
    ) -> None:
        """A call failed transiently; `paused`: for how long the route pauses, if it does."""
        now = self._clock()
        self._failures[error.error_type] += 1
        if retried:
            self._retried += 1
        self._last_failure = now
        if self._since is None:
            self._since = self._last_report = now
            pause = f", paused {round(paused, 2):g} s" if paused is not None else ""
            log.warning(
                "route %s: the upstream failed a call (%s: %s), %s; concurrency %d of %d%s",
                self._route,
                error.error_type,
                error.message,
                "retried" if retried else "not retried",
                concurrency,
                self._max_concurrency,
                pause,
                extra={"route": self._route},
            )
        elif now - self._last_report >= REPORT_SECONDS:
            self._last_report = now
            self._report(logging.WARNING, "calls keep failing", now, concurrency)

    def succeeded(self, concurrency: int) -> None:
        if self._since is None:
            return
        self._succeeded += 1
        now = self._clock()
        if now - self._last_failure >= QUIET_SECONDS:
            self._report(logging.INFO, "the upstream answers again", now, concurrency)
            self._since = None
            self._failures.clear()
            self._retried = self._succeeded = 0

    def _report(self, level: int, what: str, now: float, concurrency: int) -> None:
        assert self._since is not None
        failed = self._failures.total()
        types = ", ".join(f"{error_type} {count}" for error_type, count in self._failures.items())
        log.log(
            level,
            "route %s: %s; in %.0f s, %d of %d calls failed (%s), %d of them retried;"
            " concurrency %d of %d",
            self._route,
            what,
            now - self._since,
            failed,
            failed + self._succeeded,
            types,
            self._retried,
            concurrency,
            self._max_concurrency,
            extra={"route": self._route},
        )
