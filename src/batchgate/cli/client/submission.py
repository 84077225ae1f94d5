"""Submitting requests as one or more batches and, when asked to wait, seeing them to the end.

Shared by `submit` and `retry`. Ctrl-C never cancels anything: the batches keep running on the
server, and the message says how to pick them up again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import typer

from batchgate.cli.client.consoles import tell
from batchgate.cli.client.display import outcome_counts
from batchgate.cli.client.failures import EXIT_INTERRUPTED, exit_code_for
from batchgate.cli.client.request_file import BatchRequest
from batchgate.cli.client.results import open_output, write_results
from batchgate.cli.client.splitting import split_into_batches
from batchgate.cli.client.watch import watch_until_ended

if TYPE_CHECKING:
    import anthropic
    from anthropic.types.messages import MessageBatch, batch_create_params


@dataclass(frozen=True)
class Waiting:
    """What `--wait` asks for: how often to look, and where the results go (None: stdout)."""

    interval: float
    output: Path | None


def suggest_retry(batch: MessageBatch) -> None:
    if exit_code_for([batch]):
        tell(f"Submit its errored and expired requests again with: batchgate retry {batch.id}")


def _report_outcome(batches: Sequence[MessageBatch]) -> None:
    for batch in batches:
        tell(f"{batch.id} ended:", outcome_counts(batch.request_counts))
        suggest_retry(batch)


def _explain_interruption(created: Sequence[MessageBatch], planned: int) -> None:
    if created:
        tell("Interrupted. These batches keep running on the server; pick them up with:")
        for batch in created:
            tell(f"  batchgate status {batch.id} --wait; batchgate results {batch.id} -o FILE")
    if len(created) < planned:
        tell(
            f"Batch {len(created) + 1} of {planned} may or may not have been created (see"
            " `batchgate ls`); any after it were not submitted."
        )


def submit_requests(
    client: anthropic.Anthropic,
    requests: Sequence[BatchRequest],
    waiting: Waiting | None,
    extensions: Mapping[str, Any] | None = None,
) -> int:
    """Submits `requests` in as many batches as the limits need, each with the batchgate
    `extensions` of a create body (cli/client/extensions.py); returns the exit code.

    Without waiting, prints the new batch ids on stdout. Waiting, writes every batch's results
    to the output once all have ended.
    """
    groups = split_into_batches(requests)
    if len(groups) > 1:
        tell(
            f"{len(requests):,} requests exceed the limits of one batch:"
            f" submitting {len(groups)} batches."
        )
    created: list[MessageBatch] = []
    try:
        for group in groups:
            batch = client.messages.batches.create(
                requests=cast("list[batch_create_params.Request]", group),
                extra_body=dict(extensions) if extensions else None,
            )
            created.append(batch)
            tell(f"Submitted {batch.id}: {len(group):,} requests.")
        if waiting is None:
            for batch in created:
                typer.echo(batch.id)
            for batch in created:
                tell(f"Follow it with: batchgate status {batch.id} --wait")
            return 0
    except KeyboardInterrupt:
        _explain_interruption(created, len(groups))
        raise typer.Exit(EXIT_INTERRUPTED) from None
    return see_through(client, created, waiting)


def see_through(client: anthropic.Anthropic, created: list[MessageBatch], waiting: Waiting) -> int:
    """Waits for batches to end, then writes their results; returns the exit code."""
    try:
        ended = watch_until_ended(client, created, waiting.interval)
        with open_output(waiting.output) as output:
            written = sum(write_results(client, batch.id, output) for batch in ended)
    except KeyboardInterrupt:
        _explain_interruption(created, len(created))
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if waiting.output is not None:
        tell(f"Wrote {written:,} results to {waiting.output}.")
    _report_outcome(ended)
    return exit_code_for(ended)
