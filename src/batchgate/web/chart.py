"""A batch's results over time, drawn as an SVG on the server from its stored events.

Each `batch.progress` event (at most one a second, kept a day) and its `batch.ended` carry the
request counts at that moment: stacked, they are areas of results by type against the seconds
since the batch was created. No script draws it, so it is there with scripts off, and its
summary is the chart's text alternative.
"""

from dataclasses import dataclass

import orjson

from batchgate.lifecycle.events import ENDED, PROGRESS
from batchgate.storage.base import BatchEvent, BatchRow, Store
from batchgate.web.display import SEGMENTS, age

WIDTH = 600
HEIGHT = 120
# The events a page reads at most: past it (a batch of many hours), the chart stops there.
EVENTS_READ = 20_000
EVENTS_PER_READ = 1_000
RESULT_TYPES = tuple(name for name in SEGMENTS if name != "processing")


@dataclass(frozen=True, slots=True)
class Area:
    name: str
    points: str  # an SVG polygon's points


@dataclass(frozen=True, slots=True)
class Chart:
    areas: list[Area]
    summary: str
    width: int = WIDTH
    height: int = HEIGHT


def batch_events(store: Store, owner: str, batch_id: str) -> list[BatchEvent]:
    """The batch's stored events, oldest first."""
    events: list[BatchEvent] = []
    while len(events) < EVENTS_READ:
        read = store.events_after(
            owner, events[-1].number if events else 0, batch_id, EVENTS_PER_READ
        )
        events.extend(read)
        if len(read) < EVENTS_PER_READ:
            break
    return events


def chart(batch: BatchRow, events: list[BatchEvent]) -> Chart | None:
    """The stacked areas of results by type over time, from the request counts of the batch's
    progress and ended events; None until two were recorded (one point draws nothing)."""
    moments = []
    for event in events:
        if event.type in (PROGRESS, ENDED):
            counts = orjson.loads(event.data)["request_counts"]
            moments.append(
                (event.created_at - batch.created_at, {t: counts[t] for t in RESULT_TYPES})
            )
    if len(moments) < 2 or not batch.total:
        return None
    points = [(0.0, dict.fromkeys(RESULT_TYPES, 0)), *moments]
    duration = max(points[-1][0], 1e-3)

    def x(seconds: float) -> float:
        return WIDTH * max(seconds, 0.0) / duration

    def y(count: int) -> float:
        return HEIGHT * (1 - count / batch.total)

    areas = []
    below = [0] * len(points)
    for name in RESULT_TYPES:
        above = [under + counts[name] for under, (_, counts) in zip(below, points, strict=True)]
        if above != below:
            top = [f"{x(t):.1f},{y(c):.1f}" for (t, _), c in zip(points, above, strict=True)]
            bottom = [
                f"{x(t):.1f},{y(c):.1f}"
                for (t, _), c in reversed(list(zip(points, below, strict=True)))
            ]
            areas.append(Area(name, " ".join(top + bottom)))
        below = above
    finished = points[-1][1]
    told = ", ".join(f"{finished[name]} {name}" for name in RESULT_TYPES if finished[name])
    seconds = points[-1][0]
    within = f"{seconds:.1f} s" if seconds < 10 else age(seconds)
    summary = (
        f"Results over time: {sum(finished.values())} of {batch.total} within {within}"
        f"{f' ({told})' if told else ''}; {len(moments)} points."
    )
    return Chart(areas, summary)
