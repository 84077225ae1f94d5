"""`batchgate ls --watch`: the list of batches, looked at again at each event of the workspace
where the server streams them (batchgate's GET /v1/events), else every `interval` seconds
(Anthropic's API), until interrupted. On a terminal the table is redrawn in place; written to a
pipe or file, the list is printed again each time it changes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.live import Live

from batchgate.cli.client.consoles import stdout_console
from batchgate.cli.client.display import batch_json, batches_table, print_json
from batchgate.cli.client.event_feed import EventFeed, event_feed
from batchgate.cli.client.watch import events_url

if TYPE_CHECKING:
    import anthropic
    from anthropic.types.messages import MessageBatch


# After an event, the events that follow this soon are seen by the same look: a busy workspace
# (a progress event a second per running batch) costs a list request this often at most.
COALESCE_SECONDS = 0.25


def _wait(feed: EventFeed | None, interval: float) -> None:
    if feed is None:
        time.sleep(interval)
    else:
        feed.wait(interval)
        time.sleep(COALESCE_SECONDS)


def watch_list(
    client: anthropic.Anthropic,
    fetch: Callable[[], list[MessageBatch]],
    interval: float,
    as_json: bool,
) -> None:
    """Shows the batches `fetch` lists, again at each change, until Ctrl-C."""
    console = stdout_console()
    with event_feed(events_url(client), client.auth_headers, None) as feed:
        # The first look follows the stream's opening: no event after it is missed.
        batches = fetch()
        if console.is_terminal and not as_json:
            with Live(batches_table(batches), console=console, auto_refresh=False) as live:
                while True:
                    _wait(feed, interval)
                    live.update(batches_table(fetch()), refresh=True)
        while True:
            if as_json:
                print_json([batch_json(batch) for batch in batches])
            else:
                console.print(batches_table(batches))
            shown = batches
            while batches == shown:
                _wait(feed, interval)
                batches = fetch()
