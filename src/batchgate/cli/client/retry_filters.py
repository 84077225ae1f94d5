"""Which requests `batchgate retry` takes, and the options that choose them: by result type and
error type for a Message Batch, by status code, error type and whether they ran for an OpenAI
batch (the retry bodies of docs/api.md). An option of the other format is refused."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from batchgate.cli.client.failures import refuse_options
from batchgate.cli.client.results import ResultType

if TYPE_CHECKING:
    from anthropic.types.messages import MessageBatch, MessageBatchIndividualResponse

ResultTypesOption = Annotated[
    list[ResultType] | None,
    typer.Option(
        "--type",
        show_default="errored and expired",
        help="Message Batches: retry the requests whose result is of this type (repeat for"
        " several).",
    ),
]
ErrorTypesOption = Annotated[
    list[str] | None,
    typer.Option(
        "--error-type",
        show_default="any",
        help="Of the errored requests, only those that failed with this error type, such as"
        " overloaded_error (repeat for several).",
    ),
]
StatusCodesOption = Annotated[
    list[str] | None,
    typer.Option(
        "--status-code",
        show_default="any failed status",
        help="OpenAI batches: retry the requests answered with this HTTP status (429) or class"
        " of them (5xx); repeat for several.",
    ),
]
NoCancelledFlag = Annotated[
    bool,
    typer.Option("--no-cancelled", help="OpenAI batches: leave out the requests a cancel stopped."),
]
NoExpiredFlag = Annotated[
    bool,
    typer.Option("--no-expired", help="OpenAI batches: leave out the requests that expired unrun."),
]


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


@dataclass(frozen=True, slots=True)
class OpenAIRetryFilters:
    """Which requests a retry takes: batchgate's retry body (docs/api.md, "Retries"); the
    defaults take every line of the error file."""

    status_codes: tuple[str, ...] = ()
    error_types: tuple[str, ...] = ()
    include_cancelled: bool = True
    include_expired: bool = True

    def body(self) -> dict[str, object] | None:
        body: dict[str, object] = {}
        if self.status_codes:
            body["status_codes"] = list(self.status_codes)
        if self.error_types:
            body["error_types"] = list(self.error_types)
        if not self.include_cancelled:
            body["include_cancelled"] = False
        if not self.include_expired:
            body["include_expired"] = False
        return body or None


def message_batch_filters(
    batch_id: str,
    result_types: Iterable[ResultType],
    error_types: Iterable[str],
    status_codes: Iterable[str],
    skip_cancelled: bool,
    skip_expired: bool,
) -> MessageBatchFilters:
    """The filters chosen for a Message Batch; OpenAI's options refused."""
    given = {
        "--status-code": bool(list(status_codes)),
        "--no-cancelled": skip_cancelled,
        "--no-expired": skip_expired,
    }
    refuse_options(batch_id, given, "OpenAI batches (batch_...); see --type")
    return MessageBatchFilters.of((kind.value for kind in result_types), error_types)


def openai_filters(
    batch_id: str,
    result_types: Iterable[ResultType],
    error_types: Iterable[str],
    status_codes: Iterable[str],
    skip_cancelled: bool,
    skip_expired: bool,
) -> OpenAIRetryFilters:
    """The filters chosen for an OpenAI batch; Message Batches' --type refused."""
    refuse_options(batch_id, {"--type": bool(list(result_types))}, "Message Batches (msgbatch_...)")
    return OpenAIRetryFilters(
        status_codes=tuple(status_codes),
        error_types=tuple(error_types),
        include_cancelled=not skip_cancelled,
        include_expired=not skip_expired,
    )
