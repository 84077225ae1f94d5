"""Which requests of an ended batch to submit again: by default its errored and expired ones.

batchgate makes the retry itself (the `/retry` extension: a child batch that keeps its lineage),
or, older servers, hands back a batch's requests (the `/requests` extension); Anthropic's API
does neither, so there they are picked out of the file the batch was submitted from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from batchgate.cli.client.failures import CommandFailure
from batchgate.cli.client.request_file import BatchRequest

if TYPE_CHECKING:
    import anthropic
    from anthropic.types.messages import MessageBatch, MessageBatchIndividualResponse

RETRIED_RESULT_TYPES = ("errored", "expired")


@dataclass(frozen=True, slots=True)
class MessageBatchFilters:
    """Which requests a retry takes: those whose result is of `result_types`, the errored ones
    narrowed to `error_types` when given (batchgate's retry body, docs/api.md)."""

    result_types: tuple[str, ...] = RETRIED_RESULT_TYPES
    error_types: tuple[str, ...] = ()

    @classmethod
    def of(cls, result_types: Iterable[str], error_types: Iterable[str]) -> MessageBatchFilters:
        chosen = tuple(sorted(set(result_types))) or RETRIED_RESULT_TYPES
        return cls(chosen, tuple(sorted(set(error_types))))

    def body(self) -> dict[str, list[str]]:
        body = {"result_types": list(self.result_types)}
        if self.error_types:
            body["error_types"] = list(self.error_types)
        return body

    def count(self, batch: MessageBatch) -> int:
        """How many of the batch's results are of the chosen types (any error type)."""
        return sum(getattr(batch.request_counts, kind) for kind in self.result_types)

    def described(self) -> str:
        return " or ".join(self.result_types)

    def takes(self, result: MessageBatchIndividualResponse) -> bool:
        outcome = result.result
        if outcome.type not in self.result_types:
            return False
        if outcome.type == "errored" and self.error_types:
            return outcome.error.error.type in self.error_types
        return True


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
