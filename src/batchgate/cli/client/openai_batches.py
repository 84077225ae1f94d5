"""The client commands on OpenAI batches (`batch_…` ids), through the official `openai` SDK
against batchgate's OpenAI Batch API (`--base-url` + /v1, or OPENAI_BASE_URL): showing, watching,
cancelling and listing them, writing their output and error lines, and retrying their failed
requests (batchgate's `POST /v1/batches/{id}/retry`).

Their results are the lines of their output and error files; `--type` reads each line as the
Message Batch result it stands for (a 2xx answer succeeded, another errored, a request that
never ran canceled or expired), as the server's retries do (service/retries.py).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO

from rich.table import Table
from rich.text import Text

from batchgate.cli.client.consoles import tell
from batchgate.cli.client.failures import EXIT_REQUESTS_FAILED, CommandFailure
from batchgate.cli.client.results import (
    TEXT_ESCAPES,
    ResultType,
    extension_lines,
    write_lines,
)
from batchgate.cli.client.retry_filters import OpenAIRetryFilters
from batchgate.cli.client.watch import Tally, Watched
from batchgate.lifecycle.ids import OPENAI_BATCH_PREFIX
from batchgate.lifecycle.openai_results import CANCELLED_CODE

if TYPE_CHECKING:
    import openai
    from openai.types import Batch

ENDED = ("completed", "failed", "expired", "cancelled")
STATUS_STYLES = {
    "validating": "cyan",
    "in_progress": "cyan",
    "finalizing": "cyan",
    "cancelling": "yellow",
    "completed": "green",
    "failed": "red",
    "expired": "magenta",
    "cancelled": "yellow",
}
# When each timestamp of the Batch object is shown, in the order a batch passes them.
TIMESTAMPS = (
    ("created", "created_at"),
    ("in progress", "in_progress_at"),
    ("cancelling", "cancelling_at"),
    ("finalizing", "finalizing_at"),
    ("completed", "completed_at"),
    ("failed", "failed_at"),
    ("expired", "expired_at"),
    ("cancelled", "cancelled_at"),
    ("expires", "expires_at"),
)


def is_openai_batch(batch_id: str) -> bool:
    """Whether the id names an OpenAI batch (`batch_…`) rather than a Message Batch."""
    return batch_id.startswith(OPENAI_BATCH_PREFIX)


def openai_client(base_url: str | None, api_key: str | None) -> openai.OpenAI:
    """The `openai` SDK on batchgate's OpenAI Batch API under `base_url`; unset options fall
    back to the SDK's own environment variables (OPENAI_BASE_URL, OPENAI_API_KEY)."""
    import openai

    return openai.OpenAI(
        base_url=None if base_url is None else f"{base_url.rstrip('/')}/v1", api_key=api_key
    )


def has_ended(batch: Batch) -> bool:
    return batch.status in ENDED


def ended_batch(client: openai.OpenAI, batch_id: str) -> Batch:
    batch = client.batches.retrieve(batch_id)
    if not has_ended(batch):
        raise CommandFailure(
            f"{batch.id} has not ended yet ({batch.status}); wait for it with"
            f" `batchgate status {batch.id} --wait`"
        )
    return batch


def outcome_counts(batch: Batch) -> Text:
    """'3 completed · 1 failed', each count in its colour."""
    counts = batch.request_counts
    completed, failed = (counts.completed, counts.failed) if counts else (0, 0)
    return Text(" · ").join(
        [Text(f"{completed:,} completed", style="green"), Text(f"{failed:,} failed", style="red")]
    )


def _tally(batch: Batch) -> Tally:
    counts = batch.request_counts
    total, done = (counts.total, counts.completed + counts.failed) if counts else (0, 0)
    return Tally(total, done, outcome_counts(batch))


def events_url(client: openai.OpenAI) -> str:
    """batchgate's GET /v1/events under the `openai` SDK client's base URL (…/v1)."""
    return f"{str(client.base_url).rstrip('/')}/events"


def watched(client: openai.OpenAI) -> Watched[Batch]:
    """OpenAI batches as `--wait` watches them: woken by batchgate's events of them."""
    return Watched(
        batch_id=lambda batch: batch.id,
        has_ended=has_ended,
        retrieve=client.batches.retrieve,
        tally=_tally,
        events_url=events_url(client),
        auth_headers=dict(client.auth_headers),
    )


def exit_code(batch: Batch) -> int:
    """EXIT_REQUESTS_FAILED when the batch failed at create, or some of its requests did."""
    failed = batch.status == "failed" or bool(batch.request_counts and batch.request_counts.failed)
    return EXIT_REQUESTS_FAILED if failed else 0


def suggest_retry(batch: Batch) -> None:
    if batch.request_counts is not None and batch.request_counts.failed:
        tell(f"Submit its failed requests again with: batchgate retry {batch.id}")


def batch_json(batch: Batch) -> dict[str, object]:
    return batch.to_dict(mode="json")


def _when(moment: int | None) -> str:
    if moment is None:
        return "-"
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S %Z")


def _status(batch: Batch) -> str:
    return f"[{STATUS_STYLES.get(batch.status, 'default')}]{batch.status}[/]"


def batch_details(batch: Batch) -> Table:
    details = Table.grid(padding=(0, 2))
    details.add_column(style="bold")
    details.add_column()
    details.add_row("id", batch.id)
    details.add_row("status", _status(batch))
    details.add_row("endpoint", batch.endpoint)
    counts = batch.request_counts
    details.add_row("requests", f"{counts.total:,}" if counts else "-")
    details.add_row("outcomes", outcome_counts(batch))
    for label, name in TIMESTAMPS:
        moment = getattr(batch, name)
        if moment is not None:
            details.add_row(label, _when(moment))
    for label, file_id in (
        ("input file", batch.input_file_id),
        ("output file", batch.output_file_id),
        ("error file", batch.error_file_id),
    ):
        if file_id:
            details.add_row(label, file_id)
    for error in (batch.errors.data if batch.errors else None) or []:
        details.add_row("error", f"line {error.line}: {error.code}: {error.message}")
    extra = batch.model_extra or {}
    if extra.get("parent_batch_id"):
        details.add_row("retry of", str(extra["parent_batch_id"]))
    if extra.get("retry_batch_ids"):
        details.add_row("retried as", ", ".join(extra["retry_batch_ids"]))
    merged = extra.get("merged_request_counts")
    if isinstance(merged, dict):
        details.add_row(
            "merged",
            f"{merged.get('completed', 0):,} completed · {merged.get('failed', 0):,} failed",
        )
    return details


def batches_table(batches: Sequence[Batch]) -> Table:
    table = Table(box=None, header_style="bold")
    for name in ("ID", "STATUS", "CREATED", "ENDPOINT"):
        table.add_column(name, no_wrap=True)
    table.add_column("REQUESTS", justify="right")
    table.add_column("COMPLETED", justify="right", style="green")
    table.add_column("FAILED", justify="right", style="red")
    for batch in batches:
        counts = batch.request_counts
        table.add_row(
            batch.id,
            _status(batch),
            _when(batch.created_at),
            batch.endpoint,
            *(
                (f"{counts.total:,}", f"{counts.completed:,}", f"{counts.failed:,}")
                if counts
                else ("-", "-", "-")
            ),
        )
    return table


# --- results -------------------------------------------------------------------------------------


def result_type(line: dict[str, Any]) -> str:
    """The Message Batch result type an output or error line stands for."""
    response = line.get("response")
    if response is not None:
        return "succeeded" if 200 <= response["status_code"] < 300 else "errored"
    return "canceled" if line["error"]["code"] == CANCELLED_CODE else "expired"


def _summary(line: dict[str, Any]) -> str:
    kind = result_type(line)
    if kind == "succeeded":
        choices = line["response"]["body"].get("choices") or [{}]
        content = choices[0].get("message", {}).get("content")
        return content if isinstance(content, str) else ""
    if kind == "errored":
        body = line["response"].get("body")
        error = body.get("error") if isinstance(body, dict) else None
        details = error if isinstance(error, dict) else {}
        return f"[errored] {details.get('type')}: {details.get('message')}"
    return f"[{kind}]"


def text_line(line: dict[str, Any]) -> str:
    """`custom_id<TAB>the answer's text`, one line per request as for Message Batches."""
    return f"{line['custom_id']}\t{_summary(line).translate(TEXT_ESCAPES)}"


def _which_lines(wanted: Collection[str]) -> str | None:
    """The server's `lines` (output, error) holding every wanted type, or None for both."""
    if not wanted:
        return None
    if set(wanted) == {"succeeded"}:
        return "output"
    return None if "succeeded" in wanted else "error"


def write_results(
    client: openai.OpenAI,
    batch_id: str,
    output: BinaryIO,
    types: Collection[ResultType] = (),
    as_text: bool = False,
    view: dict[str, str] | None = None,
) -> int:
    """Writes the batch's output and error lines to `output` (its output file's, then its error
    file's), those of `types` only when given; with a `view` (follow, merged), those
    batchgate's `GET /v1/batches/{id}/results` answers, each as it comes. Returns how many."""
    wanted = {result_type.value for result_type in types}
    lines = _which_lines(wanted)
    keep = (lambda line: result_type(line) in wanted) if wanted else None
    to_text = text_line if as_text else None
    if view:
        params = view if lines is None else {**view, "lines": lines}
        extension = extension_lines(client, f"/batches/{batch_id}/results", params)
        try:
            return write_lines(extension, output, keep, to_text, flush_each=True)
        finally:
            extension.close()
    batch = ended_batch(client, batch_id)
    if batch.status == "failed":
        raise CommandFailure(
            f"{batch.id} failed its input file's checks and ran nothing; `batchgate status"
            f" {batch.id}` shows why"
        )
    files = {"output": batch.output_file_id, "error": batch.error_file_id}
    written = 0
    for name, file_id in files.items():
        if file_id is None or lines not in (None, name):
            continue
        with client.with_streaming_response.files.content(file_id) as response:
            written += write_lines(response.iter_lines(), output, keep, to_text)
    return written


# --- retry ---------------------------------------------------------------------------------------


def retry(client: openai.OpenAI, batch_id: str, filters: OpenAIRetryFilters) -> Batch | None:
    """The new batch of the ended batch's requests the filters take, or None when it has no
    failed request and no filter asks for others."""
    from openai.types import Batch

    batch = ended_batch(client, batch_id)
    counts = batch.request_counts
    if filters.body() is None and not (counts and counts.failed):
        return None
    return client.post(f"/batches/{batch.id}/retry", cast_to=Batch, body=filters.body())
