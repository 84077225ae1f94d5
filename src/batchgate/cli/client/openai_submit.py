"""`batchgate submit` of a file in OpenAI's batch format (`{"custom_id", "method", "url",
"body"}` lines): uploaded and created through the official `openai` SDK, against batchgate's
OpenAI Batch API (`--base-url` + /v1) or OPENAI_BASE_URL; with --wait, its output and error
files written once it has ended."""

from __future__ import annotations

from pathlib import Path

import orjson
import typer

from batchgate.cli.client.consoles import tell
from batchgate.cli.client.failures import CommandFailure
from batchgate.cli.client.openai_batches import exit_code, openai_client, watched, write_results
from batchgate.cli.client.results import open_output
from batchgate.cli.client.submission import Waiting
from batchgate.cli.client.watch import follow_until_ended


def first_request(path: Path) -> dict[str, object] | None:
    """The file's first request line decoded, if it is a JSON object; None otherwise."""
    with path.open("rb") as file:
        for line in file:
            if line.strip():
                try:
                    decoded = orjson.loads(line)
                except orjson.JSONDecodeError:
                    return None
                return decoded if isinstance(decoded, dict) else None
    return None


def is_openai_file(path: Path) -> bool:
    """Whether the file's lines are OpenAI's (`url` and `body`) rather than Anthropic's."""
    first = first_request(path)
    return first is not None and "body" in first and "url" in first


def submit_openai_file(
    path: Path, base_url: str | None, api_key: str | None, waiting: Waiting | None
) -> int:
    """Uploads and creates the batch, prints its id; the exit code."""
    first = first_request(path)
    endpoint = first.get("url") if first is not None else None
    if not isinstance(endpoint, str):
        raise CommandFailure(f"{path}: the first line has no url: not an OpenAI batch file")
    client = openai_client(base_url, api_key)
    with path.open("rb") as upload:
        uploaded = client.files.create(file=upload, purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint=endpoint,  # type: ignore[arg-type]
        completion_window="24h",
    )
    if waiting is None:
        typer.echo(batch.id)
    else:
        tell(f"Submitted {batch.id}")
    if waiting is not None:
        [batch] = follow_until_ended(watched(client), [batch], waiting.interval)
    if batch.status == "failed":
        for error in (batch.errors.data if batch.errors else None) or []:
            tell(f"{path}:{error.line}: {error.code}: {error.message}")
        return exit_code(batch)
    if waiting is None:
        return 0
    with open_output(waiting.output) as output:
        write_results(client, batch.id, output)
    counts = batch.request_counts
    tell(f"{batch.id}: {batch.status}, {counts.completed if counts else 0} completed,"
         f" {counts.failed if counts else 0} failed")  # fmt: skip
    return exit_code(batch)
