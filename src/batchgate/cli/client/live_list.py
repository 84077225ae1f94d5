"""`batchgate ls`, of Message Batches or OpenAI batches: the list of batches; with `--watch`,
looked at again at each event of the workspace where the server streams them (batchgate's GET
/v1/events), else every `interval` seconds (Anthropic's API), until interrupted. On a terminal
the table is redrawn in place; written to a pipe or file, the list is printed again each time it
changes."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, NoReturn, TypeVar

import typer
from rich.live import Live

from batchgate.cli.client.consoles import stdout_console, tell
from batchgate.cli.client.display import print_json
from batchgate.cli.client.event_feed import EventFeed, event_feed

if TYPE_CHECKING:
    from rich.table import Table

Batch = TypeVar("Batch")

# After an event, the events that follow this soon are seen by the same look: a busy workspace
# (a progress event a second per running batch) costs a list request this often at most.
COALESCE_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class Listing(Generic[Batch]):
    """How to list the batches of one API (Message Batches, or OpenAI's) through its SDK, and
    show them."""

    fetch: Callable[[], list[Batch]]
    table: Callable[[Sequence[Batch]], Table]
    to_json: Callable[[Batch], dict[str, object]]
    events_url: str
    auth_headers: dict[str, str]


def _wait(feed: EventFeed | None, interval: float) -> None:
    if feed is None:
        time.sleep(interval)
    else:
        feed.wait(interval)
        time.sleep(COALESCE_SECONDS)


def show_list(listing: Listing[Batch], watch: bool, interval: float, as_json: bool) -> None:
    """The batches `listing` fetches, once; with `watch`, again at each change until Ctrl-C."""
    if watch:
        watch_list(listing, interval, as_json)
    batches = listing.fetch()
    if as_json:
        print_json([listing.to_json(batch) for batch in batches])
    elif batches:
        stdout_console().print(listing.table(batches))
    else:
        tell("No batches.")


def watch_list(listing: Listing[Batch], interval: float, as_json: bool) -> NoReturn:
    """Shows the batches `listing` fetches, again at each change; Ctrl-C ends it (exit 0)."""
    try:
        _watch(listing, interval, as_json)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


def _watch(listing: Listing[Batch], interval: float, as_json: bool) -> NoReturn:
    console = stdout_console()
    with event_feed(listing.events_url, listing.auth_headers, None) as feed:
        # The first look follows the stream's opening: no event after it is missed.
        batches = listing.fetch()
        if console.is_terminal and not as_json:
            with Live(listing.table(batches), console=console, auto_refresh=False) as live:
                while True:
                    _wait(feed, interval)
                    live.update(listing.table(listing.fetch()), refresh=True)
        while True:
            if as_json:
                print_json([listing.to_json(batch) for batch in batches])
            else:
                console.print(listing.table(batches))
            shown = batches
            while batches == shown:
                _wait(feed, interval)
                batches = listing.fetch()
