"""What `status`, `ls --format openai [--watch]`, `cancel`, `results` and `retry` do with an
OpenAI batch (cli/client/commands.py picks them by the id's prefix): the same options and output
as for a Message Batch, through the `openai` SDK (cli/client/openai_batches.py)."""

from __future__ import annotations

from collections.abc import Collection
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from batchgate.cli.client.consoles import stdout_console, tell
from batchgate.cli.client.display import print_json
from batchgate.cli.client.failures import EXIT_INTERRUPTED
from batchgate.cli.client.live_list import Listing, show_list
from batchgate.cli.client.openai_batches import (
    batch_details,
    batch_json,
    batches_table,
    events_url,
    exit_code,
    openai_client,
    retry,
    suggest_retry,
    watched,
    write_results,
)
from batchgate.cli.client.results import ResultType, open_output
from batchgate.cli.client.retry_filters import OpenAIRetryFilters
from batchgate.cli.client.submission import Waiting
from batchgate.cli.client.watch import follow_status, follow_until_ended

if TYPE_CHECKING:
    from openai.types import Batch

PAGE_SIZE_MAX = 100  # the most OpenAI's list takes a page


def show_status(
    batch_id: str,
    wait: bool,
    interval: float,
    as_json: bool,
    base_url: str | None,
    api_key: str | None,
) -> None:
    client = openai_client(base_url, api_key)
    batch = client.batches.retrieve(batch_id)
    if wait:
        batch = follow_status(watched(client), batch, interval)
    if as_json:
        print_json(batch_json(batch))
    else:
        stdout_console().print(batch_details(batch))
    if wait:
        suggest_retry(batch)
        raise typer.Exit(exit_code(batch))


def list_batches(
    limit: int,
    show_all: bool,
    watch: bool,
    interval: float,
    as_json: bool,
    base_url: str | None,
    api_key: str | None,
) -> None:
    client = openai_client(base_url, api_key)

    def fetch() -> list[Batch]:
        # Iterating the SDK's page follows the next pages as needed.
        pages = client.batches.list(limit=PAGE_SIZE_MAX if show_all else min(limit, PAGE_SIZE_MAX))
        return list(pages) if show_all else list(islice(pages, limit))

    listing = Listing(
        fetch, batches_table, batch_json, events_url(client), dict(client.auth_headers)
    )
    show_list(listing, watch, interval, as_json)


def cancel(batch_id: str, as_json: bool, base_url: str | None, api_key: str | None) -> None:
    batch = openai_client(base_url, api_key).batches.cancel(batch_id)
    if as_json:
        print_json(batch_json(batch))
    else:
        stdout_console().print(f"{batch.id} is {batch.status}.")


def results(
    batch_id: str,
    output: Path | None,
    types: Collection[ResultType],
    as_text: bool,
    view: dict[str, str] | None,
    base_url: str | None,
    api_key: str | None,
) -> None:
    client = openai_client(base_url, api_key)
    with open_output(output) as sink:
        written = write_results(client, batch_id, sink, types, as_text, view)
    if output is not None:
        tell(f"Wrote {written:,} results to {output}.")


def retry_failed(
    batch_id: str,
    filters: OpenAIRetryFilters,
    waiting: Waiting | None,
    base_url: str | None,
    api_key: str | None,
) -> None:
    """Has the server make the batch's retry; prints its id, or sees it through."""
    client = openai_client(base_url, api_key)
    child = retry(client, batch_id, filters)
    if child is None:
        tell(f"Nothing to retry: {batch_id} has no failed requests.")
        return
    total = child.request_counts.total if child.request_counts else 0
    tell(f"Submitted {child.id}: {total:,} requests.")
    if waiting is None:
        typer.echo(child.id)
        return
    try:
        [child] = follow_until_ended(watched(client), [child], waiting.interval)
        with open_output(waiting.output) as sink:
            written = write_results(client, child.id, sink)
    except KeyboardInterrupt:
        tell(f"Interrupted. {child.id} keeps running on the server; pick it up with:")
        tell(f"  batchgate status {child.id} --wait; batchgate results {child.id} -o FILE")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if waiting.output is not None:
        tell(f"Wrote {written:,} results to {waiting.output}.")
    suggest_retry(child)
    raise typer.Exit(exit_code(child))
