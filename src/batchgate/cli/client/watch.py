"""Watching batches until they end, with a live progress bar for each on stderr."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Column
from rich.text import Text

from batchgate.cli.client.consoles import stderr_console
from batchgate.cli.client.display import outcome_counts, total_requests

if TYPE_CHECKING:
    import anthropic
    from anthropic.types.messages import MessageBatch, MessageBatchRequestCounts


class OutcomesColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        counts: MessageBatchRequestCounts = task.fields["counts"]
        return outcome_counts(counts)


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.speed
        return Text("- req/s" if speed is None else f"{speed:,.0f} req/s", style="cyan")


def _show(progress: Progress, task_id: TaskID, batch: MessageBatch) -> None:
    counts = batch.request_counts
    progress.update(
        task_id,
        total=total_requests(counts),
        completed=total_requests(counts) - counts.processing,
        counts=counts,
    )


def watch_until_ended(
    client: anthropic.Anthropic, batches: Sequence[MessageBatch], interval: float
) -> list[MessageBatch]:
    """Polls every `interval` seconds until every batch has ended; returns them as they ended.

    Anthropic's API reports counts only at the end, so there its bars jump from 0 to done.
    """
    latest = list(batches)
    # Columns truncate rather than wrap, so that a narrow terminal still shows one line a batch.
    with Progress(
        TextColumn("{task.description}", table_column=Column(no_wrap=True)),
        BarColumn(bar_width=20),
        MofNCompleteColumn(table_column=Column(no_wrap=True)),
        OutcomesColumn(table_column=Column(no_wrap=True)),
        RateColumn(table_column=Column(no_wrap=True)),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=stderr_console(),
    ) as progress:
        tasks = [progress.add_task(batch.id, counts=batch.request_counts) for batch in latest]
        for task_id, batch in zip(tasks, latest, strict=True):
            _show(progress, task_id, batch)
        while any(batch.processing_status != "ended" for batch in latest):
            time.sleep(interval)
            latest = [
                batch
                if batch.processing_status == "ended"
                else client.messages.batches.retrieve(batch.id)
                for batch in latest
            ]
            for task_id, batch in zip(tasks, latest, strict=True):
                _show(progress, task_id, batch)
    return latest
