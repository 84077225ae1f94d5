"""The client commands and their options; `register` adds them to the `batchgate` app."""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from batchgate.cli.client import openai_commands
from batchgate.cli.client.connection import ApiKeyOption, BaseUrlOption, connect
from batchgate.cli.client.consoles import stdout_console, tell
from batchgate.cli.client.display import batch_details, batch_json, batches_table, print_json
from batchgate.cli.client.extensions import (
    CompletionWindowOption,
    ErroredShareOption,
    LabelOption,
    MaxCostOption,
    MaxOutputTokensOption,
    MinResultsOption,
    PriorityOption,
    StatusOption,
    create_extensions,
    list_filters,
)
from batchgate.cli.client.failures import (
    EXIT_LINES_SKIPPED,
    CommandFailure,
    exit_code_for,
    refuse_options,
    reports_failures,
)
from batchgate.cli.client.live_list import Listing, show_list
from batchgate.cli.client.openai_batches import is_openai_batch
from batchgate.cli.client.openai_submit import is_openai_file, submit_openai_file
from batchgate.cli.client.rejected_lines import load_valid_requests
from batchgate.cli.client.request_file import PromptSettings, load_requests
from batchgate.cli.client.results import ResultType, open_output, write_results
from batchgate.cli.client.retry import (
    failed_requests_from_file,
    failed_requests_from_server,
    retry_on_server,
)
from batchgate.cli.client.retry_filters import (
    ErrorTypesOption,
    NoCancelledFlag,
    NoExpiredFlag,
    ResultTypesOption,
    StatusCodesOption,
    message_batch_filters,
    openai_filters,
)
from batchgate.cli.client.submission import Waiting, see_through, submit_requests, suggest_retry
from batchgate.cli.client.watch import events_url, follow_status, message_batches
from batchgate.cli.help import add_command

if TYPE_CHECKING:
    import anthropic
    from anthropic.types.messages import MessageBatch

FileFormat = Literal["auto", "anthropic", "openai"]
ListFormat = Literal["anthropic", "openai"]
PANEL = "Batches (client: talks to batchgate or Anthropic through the SDK)"
PAGE_SIZE_MAX = 1000

BatchId = Annotated[
    str,
    typer.Argument(
        help="The batch id: a Message Batch's (msgbatch_...), or an OpenAI batch's (batch_...),"
        " which goes to the OpenAI Batch API under --base-url /v1.",
        show_default=False,
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
WaitFlag = Annotated[bool, typer.Option("--wait", help="Show progress until the batch ends.")]
WaitForResultsFlag = Annotated[
    bool,
    typer.Option("--wait", help="Show progress until the batches end, then write their results."),
]
IntervalOption = Annotated[
    float, typer.Option("--interval", min=0.01, help="Seconds between checks while waiting.")
]
OutputOption = Annotated[
    Path | None,
    typer.Option(
        "--output", "-o", dir_okay=False, show_default="stdout", help="Write results to this file."
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option(help="The file holds plain prompts, one a line, for this model."),
]
MaxTokensOption = Annotated[
    int | None, typer.Option(min=1, help="max_tokens of each prompt's request.")
]


def _prompt_settings(model: str | None, max_tokens: int | None) -> PromptSettings | None:
    if model is None and max_tokens is None:
        return None
    if model is None or max_tokens is None:
        raise CommandFailure("plain prompts need both --model and --max-tokens")
    return PromptSettings(model=model, max_tokens=max_tokens)


def _waiting(wait: bool, interval: float, output: Path | None) -> Waiting | None:
    if wait:
        return Waiting(interval=interval, output=output)
    if output is not None:
        raise CommandFailure(
            "--output goes with --wait; without it, fetch the results once the batch has ended"
            " with `batchgate results ID -o FILE`"
        )
    return None


def _ended_batch(client: anthropic.Anthropic, batch_id: str) -> MessageBatch:
    batch = client.messages.batches.retrieve(batch_id)
    if batch.processing_status != "ended":
        raise CommandFailure(
            f"{batch.id} has not ended yet ({batch.processing_status}); wait for it with"
            f" `batchgate status {batch.id} --wait`"
        )
    return batch


@reports_failures
def submit(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            show_default=False,
            help='JSONL, one {"custom_id", "params"} request a line; or prompts with --model;'
            ' or OpenAI\'s batch format, {"custom_id", "method", "url", "body"}.',
        ),
    ],
    file_format: Annotated[
        FileFormat,
        typer.Option(
            "--format",
            help="The file's format: auto (OpenAI's when its first line has url and body),"
            " anthropic, or openai (sent to the OpenAI Batch API under --base-url /v1).",
        ),
    ] = "auto",
    model: ModelOption = None,
    max_tokens: MaxTokensOption = None,
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid",
            help="Submit the valid lines; write the invalid ones, with their line numbers and"
            " reasons, beside FILE (requests.jsonl: requests.rejected.jsonl). Exit code 3.",
        ),
    ] = False,
    wait: WaitForResultsFlag = False,
    output: OutputOption = None,
    interval: IntervalOption = 1.0,
    label: LabelOption = None,
    priority: PriorityOption = None,
    abort_errored_share: ErroredShareOption = None,
    abort_min_results: MinResultsOption = None,
    abort_max_output_tokens: MaxOutputTokensOption = None,
    abort_max_cost_usd: MaxCostOption = None,
    completion_window: CompletionWindowOption = None,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Submit a file of requests as one batch, or several when it exceeds the limits of one.

    Every line is checked first; a bad line stops everything before anything is sent, unless
    --skip-invalid leaves it out. Prints the new batch ids, or with --wait shows progress and
    then writes the results.
    """
    waiting = _waiting(wait, interval, output)
    if file_format == "openai" or (
        file_format == "auto" and model is None and is_openai_file(file)
    ):
        raise typer.Exit(submit_openai_file(file, base_url, api_key, waiting))
    extensions = create_extensions(
        label,
        priority,
        abort_errored_share,
        abort_min_results,
        abort_max_output_tokens,
        abort_max_cost_usd,
        completion_window,
    )
    prompts = _prompt_settings(model, max_tokens)
    if skip_invalid:
        requests, skipped = load_valid_requests(file, prompts)
    else:
        requests, skipped = load_requests(file, prompts), 0
    code = submit_requests(connect(base_url, api_key), requests, waiting, extensions)
    raise typer.Exit(code or (EXIT_LINES_SKIPPED if skipped else 0))


@reports_failures
def status(
    batch_id: BatchId,
    wait: WaitFlag = False,
    interval: IntervalOption = 1.0,
    as_json: JsonFlag = False,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Show a batch: its status and request counts. With --wait, follow it until it ends."""
    if is_openai_batch(batch_id):
        openai_commands.show_status(batch_id, wait, interval, as_json, base_url, api_key)
        return
    client = connect(base_url, api_key)
    batch = client.messages.batches.retrieve(batch_id)
    if wait:
        batch = follow_status(message_batches(client), batch, interval)
    if as_json:
        print_json(batch_json(batch))
    else:
        stdout_console().print(batch_details(batch))
    if wait:
        suggest_retry(batch)
        raise typer.Exit(exit_code_for([batch]))


@reports_failures
def list_batches(
    limit: Annotated[int, typer.Option(min=1, help="How many batches to show.")] = 20,
    show_all: Annotated[bool, typer.Option("--all", help="Show every batch.")] = False,
    label: LabelOption = None,
    status: StatusOption = None,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="Keep the list up to date until Ctrl-C: at each event where the server streams"
            " them (batchgate), else every --interval seconds.",
        ),
    ] = False,
    interval: IntervalOption = 2.0,
    list_format: Annotated[
        ListFormat,
        typer.Option(
            "--format",
            help="Which batches: Message Batches (anthropic), or OpenAI batches (openai, from the"
            " OpenAI Batch API under --base-url /v1).",
        ),
    ] = "anthropic",
    as_json: JsonFlag = False,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """List batches, newest first; --label and --status keep those that match (batchgate)."""
    if list_format == "openai":
        given = {"--label": bool(label), "--status": status is not None}
        refuse_options("--format openai", given, "Message Batches")
        openai_commands.list_batches(limit, show_all, watch, interval, as_json, base_url, api_key)
        return
    client = connect(base_url, api_key)

    def fetch() -> list[MessageBatch]:
        # Iterating the SDK's page follows the next pages as needed, with the same filters.
        listing = client.messages.batches.list(
            limit=PAGE_SIZE_MAX if show_all else min(limit, PAGE_SIZE_MAX),
            extra_query=list_filters(label, status) or None,
        )
        return list(listing) if show_all else list(islice(listing, limit))

    listing = Listing(
        fetch, batches_table, batch_json, events_url(client), dict(client.auth_headers)
    )
    show_list(listing, watch, interval, as_json)


@reports_failures
def cancel(
    batch_id: BatchId,
    as_json: JsonFlag = False,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Cancel a batch: requests not yet started are canceled, running ones finish."""
    if is_openai_batch(batch_id):
        openai_commands.cancel(batch_id, as_json, base_url, api_key)
        return
    batch = connect(base_url, api_key).messages.batches.cancel(batch_id)
    if as_json:
        print_json(batch_json(batch))
    else:
        stdout_console().print(f"{batch.id} is {batch.processing_status}.")


@reports_failures
def delete(
    batch_id: BatchId,
    as_json: JsonFlag = False,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Delete an ended batch and its results."""
    if is_openai_batch(batch_id):
        raise CommandFailure(
            f"{batch_id} is an OpenAI batch: the OpenAI Batch API deletes its files"
            " (DELETE /v1/files/{id}), not batches"
        )
    deleted = connect(base_url, api_key).messages.batches.delete(batch_id)
    if as_json:
        print_json(deleted.to_dict(mode="json"))
    else:
        stdout_console().print(f"Deleted {deleted.id}.")


@reports_failures
def results(
    batch_id: BatchId,
    output: OutputOption = None,
    types: Annotated[
        list[ResultType] | None,
        typer.Option(
            "--type",
            help="Only results of this type (repeat for several). Of an OpenAI batch, the lines"
            " that stand for it: succeeded its 2xx answers, errored its other answers, canceled"
            " and expired the requests that never ran.",
        ),
    ] = None,
    text: Annotated[
        bool,
        typer.Option("--text", help="Print custom_id<TAB>first text block instead of JSONL."),
    ] = False,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            help="Print each result as it is committed, while the batch runs, until it ends"
            " (batchgate only).",
        ),
    ] = False,
    merged: Annotated[
        bool,
        typer.Option(
            "--merged",
            help="The latest result of each request across the batch's retries (batchgate only).",
        ),
    ] = False,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Stream the results of an ended batch as JSONL (or text lines) to stdout or a file.

    With --follow, the results of a running batch as they come, until it ends.
    """
    if follow and merged:
        raise CommandFailure("--follow and --merged cannot be combined")
    view = {"follow": "true"} if follow else {"merged": "true"} if merged else None
    if is_openai_batch(batch_id):
        openai_commands.results(batch_id, output, types or (), text, view, base_url, api_key)
        return
    client = connect(base_url, api_key)
    if view:
        with open_output(output) as sink:
            written = write_results(client, batch_id, sink, types or (), text, view)
        if output is not None:
            tell(f"Wrote {written:,} results to {output}.")
        return
    batch = _ended_batch(client, batch_id)
    with open_output(output) as sink:
        written = write_results(client, batch.id, sink, types or (), as_text=text)
    if output is not None:
        tell(f"Wrote {written:,} results to {output}.")


@reports_failures
def retry(
    batch_id: BatchId,
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from",
            exists=True,
            dir_okay=False,
            readable=True,
            show_default="ask the batchgate server",
            help="The file the batch was submitted from, for APIs that cannot hand back a"
            " batch's requests (Anthropic's).",
        ),
    ] = None,
    model: ModelOption = None,
    max_tokens: MaxTokensOption = None,
    types: ResultTypesOption = None,
    error_types: ErrorTypesOption = None,
    status_codes: StatusCodesOption = None,
    skip_cancelled: NoCancelledFlag = False,
    skip_expired: NoExpiredFlag = False,
    wait: WaitForResultsFlag = False,
    output: OutputOption = None,
    interval: IntervalOption = 1.0,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Submit the failed requests of an ended batch again, as a new batch: by default a Message
    Batch's errored and expired requests, an OpenAI batch's error file's.

    Prints the new batch id, or with --wait shows progress and then writes the results.
    """
    waiting = _waiting(wait, interval, output)
    chosen = (types or (), error_types or (), status_codes or (), skip_cancelled, skip_expired)
    if is_openai_batch(batch_id):
        given = {"--from": from_file, "--model": model, "--max-tokens": max_tokens}
        refuse_options(
            batch_id,
            {option: value is not None for option, value in given.items()},
            "Message Batches (msgbatch_...)",
        )
        filters = openai_filters(batch_id, *chosen)
        openai_commands.retry_failed(batch_id, filters, waiting, base_url, api_key)
        return
    selection = message_batch_filters(batch_id, *chosen)
    prompts = _prompt_settings(model, max_tokens)
    if prompts is not None and from_file is None:
        raise CommandFailure("--model and --max-tokens describe a prompts file given with --from")
    client = connect(base_url, api_key)
    batch = _ended_batch(client, batch_id)
    if not selection.count(batch):
        tell(f"Nothing to retry: {batch.id} has no {selection.described()} requests.")
        return
    if from_file is None:
        child = retry_on_server(client, batch.id, selection)
        if child is not None:
            tell(f"Submitted {child.id}: {child.request_counts.processing:,} requests.")
            if waiting is None:
                typer.echo(child.id)
                return
            raise typer.Exit(see_through(client, [child], waiting))
        requests = failed_requests_from_server(client, batch.id, selection)
    else:
        submitted = load_requests(from_file, prompts)
        requests = failed_requests_from_file(client, batch.id, submitted, str(from_file), selection)
    raise typer.Exit(submit_requests(client, requests, waiting))


COMMANDS: dict[str, Callable[..., None]] = {
    "submit": submit,
    "status": status,
    "ls": list_batches,
    "cancel": cancel,
    "delete": delete,
    "results": results,
    "retry": retry,
}


def register(app: typer.Typer) -> None:
    """Adds the client commands to `app`, the `batchgate` command."""
    for name, command in COMMANDS.items():
        add_command(app, command, name, panel=PANEL)
