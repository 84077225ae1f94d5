"""Which requests of an ended batch to submit again: its errored and expired ones.

batchgate makes the retry itself (the `/retry` extension: a child batch that keeps its lineage),
or, older servers, hands back a batch's requests (the `/requests` extension); Anthropic's API
does neither, so there they are picked out of the file the batch was submitted from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from batchgate.cli.client.failures import CommandFailure
from batchgate.cli.client.request_file import BatchRequest

if TYPE_CHECKING:
    import anthropic
    from anthropic.types.messages import MessageBatch

RETRIED_RESULT_TYPES = ("errored", "expired")


def retry_on_server(client: anthropic.Anthropic, batch_id: str) -> MessageBatch | None:
    """The child batch the server made of the batch's errored and expired requests, or None
    when the server has no `/retry` (Anthropic's API, an older batchgate)."""
    from anthropic import NotFoundError
    from anthropic.types.messages import MessageBatch

    try:
        return client.post(
            f"/v1/messages/batches/{batch_id}/retry",
            cast_to=MessageBatch,
            body={"result_types": list(RETRIED_RESULT_TYPES)},
        )
    except NotFoundError:
        return None


def failed_requests_from_server(client: anthropic.Anthropic, batch_id: str) -> list[BatchRequest]:
    from anthropic import NotFoundError

    try:
        body = client.get(
            f"/v1/messages/batches/{batch_id}/requests",
            cast_to=str,
            options={"params": {"result_type": ",".join(RETRIED_RESULT_TYPES)}},
        )
    except NotFoundError:
        raise CommandFailure(
            f"the server does not hand back the requests of {batch_id} (Anthropic's API has no"
            " such endpoint; batchgate archives them after the retention period): pass the"
            " file the batch was submitted from with --from FILE"
        ) from None
    return [orjson.loads(line) for line in body.splitlines() if line]


def _failed_custom_ids(client: anthropic.Anthropic, batch_id: str) -> set[str]:
    return {
        response.custom_id
        for response in client.messages.batches.results(batch_id)
        if response.result.type in RETRIED_RESULT_TYPES
    }


def failed_requests_from_file(
    client: anthropic.Anthropic, batch_id: str, submitted: list[BatchRequest], source: str
) -> list[BatchRequest]:
    """The requests of `submitted` whose result in the batch is errored or expired."""
    failed = _failed_custom_ids(client, batch_id)
    selected = [request for request in submitted if request["custom_id"] in failed]
    missing = failed - {request["custom_id"] for request in selected}
    if missing:
        examples = ", ".join(sorted(missing)[:5])
        raise CommandFailure(
            f"{len(missing)} failed request(s) of {batch_id} are not in {source} ({examples}):"
            " is it the file the batch was submitted from?"
        )
    return selected
