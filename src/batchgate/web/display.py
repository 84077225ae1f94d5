"""How the pages show a batch: its progress bar's segments, ages, token counts."""

from dataclasses import dataclass
from datetime import UTC, datetime

from batchgate.storage.base import BatchRow

# The bar's segments, in the order they are drawn.
SEGMENTS = ("succeeded", "errored", "canceled", "expired", "processing")


@dataclass(frozen=True, slots=True)
class Segment:
    name: str
    count: int
    percent: float


def progress(batch: BatchRow) -> list[Segment]:
    """The stacked bar of a batch: a segment per outcome with requests in it."""
    total = max(batch.total, 1)
    return [
        Segment(name, count, 100 * count / total)
        for name in SEGMENTS
        if (count := getattr(batch, name))
    ]


def done_percent(batch: BatchRow) -> int:
    if not batch.total:
        return 100
    return int(100 * (batch.total - batch.processing) / batch.total)


def rate(batch: BatchRow, now: float) -> float | None:
    """Requests finished per second since the batch was created (until it ended); None before
    the first."""
    finished = batch.total - batch.processing
    elapsed = (batch.ended_at or now) - batch.created_at
    if not finished or elapsed <= 0:
        return None
    return finished / elapsed


def eta(batch: BatchRow, now: float) -> str:
    """How long the requests still processing take at the rate so far; empty once ended or
    before a rate is known."""
    speed = rate(batch, now)
    if batch.status == "ended" or not batch.processing or speed is None:
        return ""
    return age(batch.processing / speed)


def age(seconds: float) -> str:
    """A duration as people read it at a glance: 42 s, 5 min, 3 h, 2 d."""
    if seconds < 60:
        return f"{max(0, int(seconds))} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} d"


def moment(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def tokens(count: int) -> str:
    """1234 → 1.2k, 3400000 → 3.4M."""
    if count < 1000:
        return str(count)
    if count < 1_000_000:
        return f"{count / 1000:.1f}k"
    return f"{count / 1_000_000:.1f}M"
