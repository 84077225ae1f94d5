"""Showing batches: JSON for scripts, tables for people."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import typer
from rich.table import Table
from rich.text import Text

from batchgate.cli.client.extensions import add_extension_rows

if TYPE_CHECKING:
    from anthropic.types.messages import MessageBatch, MessageBatchRequestCounts

STATUS_STYLES = {"in_progress": "cyan", "canceling": "yellow", "ended": "green"}
OUTCOME_STYLES = {
    "succeeded": "green",
    "errored": "red",
    "canceled": "yellow",
    "expired": "magenta",
}


def total_requests(counts: MessageBatchRequestCounts) -> int:
    return counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired


def outcome_counts(counts: MessageBatchRequestCounts) -> Text:
    """'3 succeeded · 1 errored · 0 canceled · 0 expired', each count in its colour."""
    parts = [
        (f"{getattr(counts, outcome):,} {outcome}", style)
        for outcome, style in OUTCOME_STYLES.items()
    ]
    return Text(" · ").join(Text(part, style=style) for part, style in parts)


def print_json(value: object) -> None:
    typer.echo(json.dumps(value, indent=2))


def batch_json(batch: MessageBatch) -> dict[str, object]:
    return batch.to_dict(mode="json")


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S %Z")


def _status(batch: MessageBatch) -> str:
    status = batch.processing_status
    return f"[{STATUS_STYLES.get(status, 'default')}]{status}[/]"


def batches_table(batches: Sequence[MessageBatch]) -> Table:
    table = Table(box=None, header_style="bold")
    table.add_column("ID", no_wrap=True)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("CREATED", no_wrap=True)
    table.add_column("REQUESTS", justify="right")
    for outcome, style in OUTCOME_STYLES.items():
        table.add_column(outcome.upper(), justify="right", style=style)
    for batch in batches:
        counts = batch.request_counts
        table.add_row(
            batch.id,
            _status(batch),
            _when(batch.created_at),
            f"{total_requests(counts):,}",
            *(f"{getattr(counts, outcome):,}" for outcome in OUTCOME_STYLES),
        )
    return table


def batch_details(batch: MessageBatch) -> Table:
    details = Table.grid(padding=(0, 2))
    details.add_column(style="bold")
    details.add_column()
    counts = batch.request_counts
    details.add_row("id", batch.id)
    details.add_row("status", _status(batch))
    details.add_row("requests", f"{total_requests(counts):,} ({counts.processing:,} processing)")
    details.add_row("outcomes", outcome_counts(counts))
    details.add_row("created", _when(batch.created_at))
    details.add_row("expires", _when(batch.expires_at))
    if batch.cancel_initiated_at is not None:
        details.add_row("cancel started", _when(batch.cancel_initiated_at))
    details.add_row("ended", _when(batch.ended_at))
    if batch.archived_at is not None:
        details.add_row("archived", _when(batch.archived_at))
    details.add_row("results", batch.results_url or "-")
    add_extension_rows(details, batch)
    return details
