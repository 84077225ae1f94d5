"""The submit page's create: a file of requests (or prompts) checked line by line with the CLI's
checks and messages (lifecycle/request_lines.py), then created as the API creates a batch."""

from dataclasses import dataclass

import orjson

from batchgate.api.auth import Caller
from batchgate.api.batch_options import batch_options
from batchgate.api.ingest import check_requests, decode_create_body, into_chunks
from batchgate.api.state import AppState
from batchgate.lifecycle.request_lines import (
    PromptSettings,
    RejectedLine,
    read_request_lines,
)
from batchgate.storage.base import BatchRow


@dataclass(frozen=True, slots=True)
class Refused:
    """Why nothing was created: the lines that cannot be requests, or what the API refused."""

    message: str
    rejected: list[RejectedLine]


async def submit(
    state: AppState, who: Caller, content: bytes, prompts: PromptSettings | None
) -> BatchRow | Refused:
    read = read_request_lines(content.splitlines(keepends=True), prompts)
    if read.rejected:
        return Refused(f"{len(read.rejected)} invalid line(s); nothing was created:", read.rejected)
    if not read.requests:
        return Refused("The file holds no requests.", [])
    settings = state.settings
    decoded = decode_create_body(orjson.dumps({"requests": read.requests}))
    custom_ids = check_requests(decoded.requests, settings.max_requests_per_batch)
    options = batch_options(decoded, settings.expiry_seconds, bool(state.prices))
    chunks = into_chunks(decoded.requests, custom_ids, settings.chunk_size)
    batch, _ = await state.batches.create(
        who.owner, len(custom_ids), chunks, options, decoded.completion_window
    )
    return batch
