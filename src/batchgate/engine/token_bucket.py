"""A per-minute limit as a token bucket: refilled continuously, spent by what goes upstream."""


class TokenBucket:
    """`per_minute` units a minute, holding at most one second's worth (and at least one).

    A small bucket paces work evenly instead of sending a minute's worth at once. A cost larger
    than the bucket is let through once the bucket is full, and the level goes below zero: the
    debt delays what comes next, so the rate over a minute still holds.
    """

    def __init__(self, per_minute: int, now: float) -> None:
        self._rate = per_minute / 60
        self._capacity = max(1.0, self._rate)
        self._level = self._capacity
        self._updated = now

    def wait(self, cost: float, now: float) -> float:
        """Seconds until `cost` may be spent: 0 when it may be now."""
        self._refill(now)
        missing = min(cost, self._capacity) - self._level
        return missing / self._rate if missing > 0 else 0.0

    def spend(self, cost: float, now: float) -> None:
        self._refill(now)
        self._level -= cost

    def _refill(self, now: float) -> None:
        self._level = min(self._capacity, self._level + (now - self._updated) * self._rate)
        self._updated = now
