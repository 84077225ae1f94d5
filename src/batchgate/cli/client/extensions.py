"""batchgate's extensions in the client commands: labels, priority, abort policies and
completion windows for `submit`, label and status filters for `ls`, and the extra fields of a
batch (labels, usage, cost, why it was canceled) for `status`.

They travel as the SDK's extra_body and extra_query, only when asked for: without these
options the commands send exactly what Anthropic's API takes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from batchgate.cli.client.failures import CommandFailure

if TYPE_CHECKING:
    from anthropic.types.messages import MessageBatch
    from rich.table import Table

LabelOption = Annotated[
    list[str] | None,
    typer.Option(
        "--label",
        metavar="KEY=VALUE",
        help="A label (batchgate's `metadata`); repeat for several.",
        show_default=False,
    ),
]
PriorityOption = Annotated[
    int | None,
    typer.Option(help="Higher runs first (batchgate; default 0).", show_default=False),
]
ErroredShareOption = Annotated[
    float | None,
    typer.Option(
        "--abort-errored-share",
        min=0,
        max=1,
        help="Cancel the batch once more than this share of its ended requests errored"
        " (batchgate), counted from --abort-min-results on.",
        show_default=False,
    ),
]
MinResultsOption = Annotated[
    int | None,
    typer.Option(
        "--abort-min-results",
        min=1,
        help="Ended requests before --abort-errored-share applies (default 100).",
        show_default=False,
    ),
]
MaxOutputTokensOption = Annotated[
    int | None,
    typer.Option(
        "--abort-max-output-tokens",
        min=0,
        help="Cancel the batch past this many output tokens (batchgate).",
        show_default=False,
    ),
]
MaxCostOption = Annotated[
    float | None,
    typer.Option(
        "--abort-max-cost-usd",
        min=0,
        help="Cancel the batch past this cost in USD (batchgate with a price table).",
        show_default=False,
    ),
]
CompletionWindowOption = Annotated[
    float | None,
    typer.Option(
        "--completion-window",
        min=0.001,
        help="Seconds until the batch expires (batchgate; at most the server's expiry).",
        show_default=False,
    ),
]
StatusOption = Annotated[
    str | None,
    typer.Option(
        "--status",
        help="Only batches in this processing status: in_progress, canceling, ended (batchgate).",
        show_default=False,
    ),
]


def labels(pairs: list[str] | None) -> dict[str, str]:
    """`--label k=v` options as a mapping."""
    parsed = {}
    for pair in pairs or ():
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise CommandFailure(f"--label takes KEY=VALUE, not {pair!r}")
        parsed[key] = value
    return parsed


def create_extensions(
    label_pairs: list[str] | None,
    priority: int | None,
    errored_share: float | None,
    min_results: int | None,
    max_output_tokens: int | None,
    max_cost_usd: float | None,
    completion_window: float | None,
) -> dict[str, Any]:
    """The extra_body of a create: only the extensions asked for."""
    body: dict[str, Any] = {}
    if label_pairs:
        body["metadata"] = labels(label_pairs)
    if priority is not None:
        body["priority"] = priority
    abort: dict[str, Any] = {}
    if errored_share is not None:
        abort["errored_share"] = errored_share
        if min_results is not None:
            abort["min_results"] = min_results
    elif min_results is not None:
        raise CommandFailure("--abort-min-results goes with --abort-errored-share")
    if max_output_tokens is not None:
        abort["max_output_tokens"] = max_output_tokens
    if max_cost_usd is not None:
        abort["max_cost_usd"] = max_cost_usd
    if abort:
        body["abort"] = abort
    if completion_window is not None:
        body["completion_window"] = completion_window
    return body


def list_filters(label_pairs: list[str] | None, status: str | None) -> dict[str, str]:
    """The extra_query of a list: `metadata[key]=value` and `processing_status`."""
    query = {f"metadata[{key}]": value for key, value in labels(label_pairs).items()}
    if status is not None:
        query["processing_status"] = status
    return query


def add_extension_rows(details: Table, batch: MessageBatch) -> None:
    """Rows for the extra fields batchgate returns; none for Anthropic's batches."""
    extra: dict[str, Any] = batch.to_dict()
    if extra.get("metadata"):
        details.add_row("labels", ", ".join(f"{k}={v}" for k, v in extra["metadata"].items()))
    if extra.get("priority"):
        details.add_row("priority", str(extra["priority"]))
    usage = extra.get("usage")
    if usage is not None:
        details.add_row(
            "usage",
            f"{usage['input_tokens']:,} input · {usage['output_tokens']:,} output ·"
            f" {usage['cache_creation_input_tokens']:,} cache write ·"
            f" {usage['cache_read_input_tokens']:,} cache read tokens",
        )
    cost = extra.get("cost")
    if cost is not None:
        details.add_row("cost", f"{cost['usd']:.4f} {cost['currency']}")
    if extra.get("abort"):
        policy = extra["abort"]
        details.add_row("abort policy", ", ".join(f"{k}={v}" for k, v in policy.items()))
    reason = extra.get("cancel_reason")
    if reason is not None:
        why = reason.get("message") or ""
        details.add_row("cancel reason", f"{reason['type']}{': ' + why if why else ''}")
