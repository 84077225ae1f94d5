"""The client commands of `batchgate`: submit, watch and manage batches on any Message Batches API.

They talk through the official `anthropic` SDK, so they work against batchgate and against
Anthropic alike; `register` adds them to the `batchgate` typer app.
"""

from batchgate.client_cli.commands import register

__all__ = ["register"]
