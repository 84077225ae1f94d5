"""The client commands of `batchgate`: submit, watch and manage batches on any Message Batches API.

They talk through the official `anthropic` SDK, so they work against batchgate and against
Anthropic alike, and on batchgate's OpenAI batches (`batch_…`) through the official `openai` SDK;
`register` adds them to the `batchgate` typer app.

The SDKs (Anthropic's alone takes some 75 MB of memory) load only when a client command runs,
never in `batchgate serve` or `worker`, which share this CLI: these modules import them for type
annotations only, and the functions that call them at run time (`connect`, `openai_client`,
`reports_failures`, ...) import them there.
"""

from batchgate.cli.client.commands import register

__all__ = ["register"]
