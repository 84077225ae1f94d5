"""Watching batches until they end, with a live progress line for each on stderr."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import typer
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.padding import Padding
from rich.progress import Progress, Task, TaskID
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from batchgate.cli.client.consoles import stderr_console, tell
from batchgate.cli.client.display import outcome_counts, total_requests
from batchgate.cli.client.event_feed import event_feed
from batchgate.cli.client.failures import EXIT_INTERRUPTED

if TYPE_CHECKING:
    import anthropic
    from anthropic.types.messages import MessageBatch, MessageBatchRequestCounts

Batch = TypeVar("Batch")

# The fields of a progress line after the batch id, most wanted first: a narrower terminal drops
# them from the end of this list (a field that does not fit is left out whole, never cut), and
# a smaller field further down may still take the room a larger one left.
PRIORITY = ("done", "eta", "outcomes", "rate")
# Where each shows; the bar takes the room left over, up to BAR_WIDTH, if there is BAR_MIN_WIDTH.
ORDER = ("bar", "done", "outcomes", "rate", "eta")
BAR_WIDTH = 20
BAR_MIN_WIDTH = 10
# The fields' line when the batch id takes a line of its own.
INDENT = "  "


def _duration(seconds: float) -> str:
    """H:MM:SS, hours counting on past a day (Anthropic's batches may take 24 hours)."""
    minutes, second = divmod(round(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02}:{second:02}"


def _row(cells: Sequence[RenderableType]) -> Table:
    """`cells` one space apart on one line, none of them wrapped."""
    row = Table.grid(padding=(0, 1))
    for _ in cells:
        row.add_column(no_wrap=True)
    row.add_row(*cells)
    return row


class ProgressLine:
    """One batch's progress, fitted to the width it is drawn in.

    The batch id leads; when it leaves no room for the done count and the ETA, it takes a line
    of its own, and the fields go on the next.
    """

    def __init__(self, task: Task) -> None:
        self.task = task

    def _texts(self) -> dict[str, Text]:
        task = self.task
        speed, remaining = task.speed, task.time_remaining
        return {
            "done": Text(f"{int(task.completed):,}/{int(task.total or 0):,}"),
            "eta": Text(f"ETA {'-:--:--' if remaining is None else _duration(remaining)}"),
            "outcomes": task.fields["outcomes"],
            "rate": Text("- req/s" if speed is None else f"{speed:,.0f} req/s", style="cyan"),
        }

    def _fields(self, texts: dict[str, Text], room: int) -> list[RenderableType]:
        """The fields that fit in `room` columns, chosen by PRIORITY, in ORDER."""
        shown: dict[str, RenderableType] = {}
        used = -1  # n fields take n - 1 spaces between them
        for name in PRIORITY:
            if used + 1 + texts[name].cell_len <= room:
                shown[name] = texts[name]
                used += 1 + texts[name].cell_len
        bar_width = min(BAR_WIDTH, room - used - 1)
        if bar_width >= BAR_MIN_WIDTH:
            shown["bar"] = ProgressBar(self.task.total, self.task.completed, width=bar_width)
        return [shown[name] for name in ORDER if name in shown]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        texts = self._texts()
        batch_id = Text(self.task.description)
        essentials = texts["done"].cell_len + 1 + texts["eta"].cell_len
        if batch_id.cell_len + 1 + essentials <= width:
            yield _row([batch_id, *self._fields(texts, width - batch_id.cell_len - 1)])
        else:
            yield batch_id
            fields = _row(self._fields(texts, width - len(INDENT)))
            yield Padding(fields, (0, 0, 0, len(INDENT)), expand=False)


class BatchProgress(Progress):
    """rich's Progress, drawn as a ProgressLine a batch."""

    def get_renderables(self) -> Iterable[RenderableType]:
        yield Group(*(ProgressLine(task) for task in self.tasks))


@dataclass(frozen=True, slots=True)
class Tally:
    """Where a batch stands, as its progress line shows it."""

    total: int
    done: int
    outcomes: Text


@dataclass(frozen=True, slots=True)
class Watched(Generic[Batch]):
    """How to watch the batches of one API (Message Batches, or OpenAI's) through its SDK."""

    batch_id: Callable[[Batch], str]
    has_ended: Callable[[Batch], bool]
    retrieve: Callable[[str], Batch]
    tally: Callable[[Batch], Tally]
    events_url: str
    auth_headers: dict[str, str]


def events_url(client: anthropic.Anthropic) -> str:
    """batchgate's GET /v1/events under the Anthropic SDK client's base URL."""
    return f"{str(client.base_url).rstrip('/')}/v1/events"


def counts_tally(counts: MessageBatchRequestCounts) -> Tally:
    """A Message Batch's tally: done is every request no longer processing."""
    total = total_requests(counts)
    return Tally(total, total - counts.processing, outcome_counts(counts))


def message_batches(client: anthropic.Anthropic) -> Watched[MessageBatch]:
    return Watched(
        batch_id=lambda batch: batch.id,
        has_ended=lambda batch: batch.processing_status == "ended",
        retrieve=client.messages.batches.retrieve,
        tally=lambda batch: counts_tally(batch.request_counts),
        events_url=events_url(client),
        auth_headers=dict(client.auth_headers),
    )


def _position(tally: Tally) -> dict[str, Any]:
    return {"total": tally.total, "completed": tally.done, "outcomes": tally.outcomes}


def show_tally(progress: Progress, task_id: TaskID, tally: Tally) -> None:
    progress.update(task_id, **_position(tally))


def watch_until_ended(
    client: anthropic.Anthropic, batches: Sequence[MessageBatch], interval: float
) -> list[MessageBatch]:
    """Message Batches watched until they end (`follow_until_ended`)."""
    return follow_until_ended(message_batches(client), batches, interval)


def follow_status(api: Watched[Batch], batch: Batch, interval: float) -> Batch:
    """`batchgate status --wait`: one batch followed until it ends; Ctrl-C leaves it running
    and says how to come back to it."""
    try:
        [ended] = follow_until_ended(api, [batch], interval)
    except KeyboardInterrupt:
        batch_id = api.batch_id(batch)
        tell(
            f"Stopped watching; {batch_id} keeps running."
            f" Resume with: batchgate status {batch_id} --wait"
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    return ended


def follow_until_ended(
    api: Watched[Batch], batches: Sequence[Batch], interval: float
) -> list[Batch]:
    """Looks again at each event of the batches where the server streams them (batchgate), else
    every `interval` seconds, until every batch has ended; returns them as they ended.

    Anthropic's API reports counts only at the end, so there its bars jump from 0 to done.
    """
    latest = list(batches)
    with (
        BatchProgress(console=stderr_console()) as progress,
        event_feed(
            api.events_url, api.auth_headers, {api.batch_id(batch) for batch in latest}
        ) as feed,
    ):
        tasks = [
            progress.add_task(api.batch_id(batch), **_position(api.tally(batch)))
            for batch in latest
        ]
        # The first look follows the stream's opening: no event after it is missed.
        first = feed is not None
        while not all(api.has_ended(batch) for batch in latest):
            if feed is None:
                time.sleep(interval)
            elif not first:
                feed.wait(interval)
            first = False
            latest = [
                batch if api.has_ended(batch) else api.retrieve(api.batch_id(batch))
                for batch in latest
            ]
            for task_id, batch in zip(tasks, latest, strict=True):
                show_tally(progress, task_id, api.tally(batch))
    return latest
