"""Which requests of an ended batch to submit again: by default its errored and expired ones.

batchgate makes the retry itself (the `/retry` extension: a child batch that keeps its lineage),
or, older servers, hands back a batch's requests (the `/requests` extension); Anthropic's API
does neither, so there they are picked out of the file the batch was submitted from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from batchgate.cli.client.failures import CommandFailure
from batchgate.cli.client.request_file import BatchRequest
from batchgate.cli.client.retry_filters import MessageBatchFilters

if TYPE_CHECKING:
    import anthropic
    from anthropic.types.messages import MessageBatch


def retry_on_server(
    client: anthropic.Anthropic, batch_id: str, selection: MessageBatchFilters
) -> MessageBatch | None:
    """The child batch the server made of the batch's requests the selection takes, or None
    when the server has no `/retry` (Anthropic's API, an older batchgate)."""
    from anthropic import NotFoundError
    from anthropic.types.messages import MessageBatch

    try:
        return client.post(
            f"/v1/messages/batches/{batch_id}/retry", cast_to=MessageBatch, body=selection.body()
        )
    except NotFoundError:
        return None


def failed_requests_from_server(
    client: anthropic.Anthropic, batch_id: str, selection: MessageBatchFilters
) -> list[BatchRequest]:
    from anthropic import NotFoundError

    if selection.error_types:
        raise CommandFailure(
            "this server has no /retry, and its /requests cannot pick errors by type: pass the"
            " file the batch was submitted from with --from FILE"
        )
    try:
        body = client.get(
            f"/v1/messages/batches/{batch_id}/requests",
            cast_to=str,
            options={"params": {"result_type": ",".join(selection.result_types)}},
        )
    except NotFoundError:
        raise CommandFailure(
            f"the server does not hand back the requests of {batch_id} (Anthropic's API has no"
            " such endpoint; batchgate archives them after the retention period): pass the"
            " file the batch was submitted from with --from FILE"
        ) from None
    return [orjson.loads(line) for line in body.splitlines() if line]


def failed_requests_from_file(
    client: anthropic.Anthropic,
    batch_id: str,
    submitted: list[BatchRequest],
    source: str,
    selection: MessageBatchFilters,
) -> list[BatchRequest]:
    """The requests of `submitted` whose result in the batch the selection takes."""
    failed = {
        response.custom_id
        for response in client.messages.batches.results(batch_id)
        if selection.takes(response)
    }
    selected = [request for request in submitted if request["custom_id"] in failed]
    missing = failed - {request["custom_id"] for request in selected}
    if missing:
        examples = ", ".join(sorted(missing)[:5])
        raise CommandFailure(
            f"{len(missing)} failed request(s) of {batch_id} are not in {source} ({examples}):"
            " is it the file the batch was submitted from?"
        )
    return selected
