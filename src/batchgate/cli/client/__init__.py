"""The client commands of `batchgate`: submit, watch and manage batches on any Message Batches API.

They talk through the official `anthropic` SDK, so they work against batchgate and against
Anthropic alike; `register` adds them to the `batchgate` typer app.

The SDK (some 75 MB in memory) loads only when a client command runs, never in `batchgate serve`
or `worker`, which share this CLI: these modules import it for type annotations only, and the
functions that call it at run time (`connect`, `reports_failures`, ...) import it there.
"""

from batchgate.cli.client.commands import register

__all__ = ["register"]
