"""The dashboard's pages of OpenAI batches (/ui/openai), over service/openai_batches.py: their
list, and one batch with its Batch object's counts and timestamps, the errors of a failed
input file by line, its input, output and error files to download, its retry chain, and its
cancel and retry.

A batch's page follows its own events (its batch.progress, at most one a second while its
counts move, then its end) and the list the workspace's, refreshing as they come.
"""

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from batchgate.api.openai_batches import batch_object
from batchgate.service.openai_batches import FileNotFound
from batchgate.service.retries import Lineage
from batchgate.storage.base import BatchRow
from batchgate.storage.openai_tables import OpenAIBatchRow
from batchgate.web import retry_forms, streams
from batchgate.web.pages import PAGE_SIZE, acting, common, live, page, render
from batchgate.web.session import app_state, caller

ENDED = ("completed", "failed", "expired", "cancelled")
# The Batch object's timestamps, in the order a batch passes them.
TIMESTAMPS = (
    ("created_at", "Created"),
    ("in_progress_at", "In progress"),
    ("cancelling_at", "Cancelling"),
    ("finalizing_at", "Finalizing"),
    ("completed_at", "Completed"),
    ("failed_at", "Failed"),
    ("expired_at", "Expired"),
    ("cancelled_at", "Cancelled"),
    ("expires_at", "Expires"),
)


@dataclass(frozen=True, slots=True)
class Shown:
    """An OpenAI batch as the pages show it: its rows and the API's Batch object made of them."""

    row: OpenAIBatchRow
    batch: BatchRow | None  # None for a batch whose input file failed validation
    object: dict[str, Any]

    @property
    def ended(self) -> bool:
        return self.object["status"] in ENDED

    @property
    def archived(self) -> bool:
        """Its results, and so its output and error files, gone after the retention period."""
        return self.batch is not None and self.batch.archived_at is not None


def _shown(row: OpenAIBatchRow, batch: BatchRow | None, lineage: Lineage | None = None) -> Shown:
    return Shown(row, batch, batch_object(row, batch, lineage))


@dataclass(frozen=True, slots=True)
class ListedPage:
    batches: list[Shown]
    paged: bool = False  # not the first page: it stays still instead of refreshing
    newer: bool = False
    older: bool = False


@page
async def batches_page(request: Request) -> Response:
    who = await caller(request)
    state = app_state(request)
    # Read before the batches: the page's stream starts there and misses nothing after them.
    events_after = await state.events.latest(who.owner)
    after_id = request.query_params.get("after_id") or None
    before_id = None if after_id else request.query_params.get("before_id") or None
    found, has_more = await state.openai.list_batches(who.owner, after_id, PAGE_SIZE, before_id)
    shown = [_shown(row, batch) for row, batch in found]
    if before_id is not None:
        listed = ListedPage(shown, paged=has_more, newer=has_more, older=True)
    else:
        later = after_id is not None
        listed = ListedPage(shown, paged=later, newer=later, older=has_more)
    template = "openai_batches_rows.html" if live(request) else "openai_batches.html"
    return render(
        request, template, listed=listed, events_after=events_after, **common(request, who)
    )


@page
async def batch_page(request: Request) -> Response:
    who = await caller(request)
    state = app_state(request)
    events_after = await state.events.latest(who.owner)  # as for the list
    row, batch = await state.openai.get_batch(who.owner, request.path_params["batch_id"])
    lineage = None
    if batch is not None:
        lineage = (await state.batches.lineage(who.owner, [batch])).get(batch.id)
    template = "openai_batch_live.html" if live(request) else "openai_batch.html"
    return render(
        request,
        template,
        shown=_shown(row, batch, lineage),
        timestamps=TIMESTAMPS,
        events_after=events_after,
        **common(request, who),
    )


@page
async def download(request: Request) -> Response:
    """The batch's input, output or error file, as GET /v1/files/{id}/content serves it."""
    who = await caller(request)
    state = app_state(request)
    batch_id, name = request.path_params["batch_id"], request.path_params["name"]
    row, _ = await state.openai.get_batch(who.owner, batch_id)
    files = {"input": row.input_file_id, "output": row.output_file_id, "error": row.error_file_id}
    file_id = files.get(name)
    if file_id is None:
        raise FileNotFound(f"Batch {batch_id} has no {name} file.")
    content = await state.openai.file_content(who.owner, file_id)
    return StreamingResponse(
        content,
        media_type="application/x-jsonl",
        headers={"content-disposition": f"attachment; filename={batch_id}_{name}.jsonl"},
    )


@page
async def cancel(request: Request) -> Response:
    who, batch_id = await acting(request)
    await app_state(request).openai.cancel_batch(who.owner, batch_id)
    return RedirectResponse(f"/ui/openai/{batch_id}", status_code=303)


@page
async def retry_failed(request: Request) -> Response:
    """Retries the ended batch's requests the form chose (by default its error file's: the failed
    ones) as a new batch, and shows it."""
    who, batch_id = await acting(request)
    selection = retry_forms.openai_selection(await request.form())
    retry, _ = await app_state(request).openai.retry_batch(who.owner, batch_id, selection)
    return RedirectResponse(f"/ui/openai/{retry.id}", status_code=303)


routes = [
    Route("/ui/openai", batches_page),
    Route("/ui/openai/{batch_id}", batch_page),
    Route("/ui/openai/{batch_id}/events", page(streams.openai_batch_events)),
    Route("/ui/openai/{batch_id}/{name}.jsonl", download),
    Route("/ui/openai/{batch_id}/cancel", cancel, methods=["POST"]),
    Route("/ui/openai/{batch_id}/retry", retry_failed, methods=["POST"]),
]
