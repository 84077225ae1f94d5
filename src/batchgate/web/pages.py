"""The dashboard's pages and the actions their forms post.

Pages are rendered on the server; htmx refreshes the parts that move (`*_live` fragments)
when the page's events stream (web/streams.py) tells of an event, while the tab is visible and
the batch is not over. A batch is only ever read
through the caller's workspace, so another workspace's batch id is a 404 page.
"""

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import anyio.to_thread
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from batchgate.api.access import require_write
from batchgate.api.auth import Caller
from batchgate.api.batches import STATUSES
from batchgate.api.errors import ApiError
from batchgate.lifecycle.ids import BATCH_ID_PREFIX, OPENAI_BATCH_PREFIX
from batchgate.lifecycle.request_lines import PROBLEMS_SHOWN, PromptSettings, RejectedLine
from batchgate.service.batches import BatchNotFound
from batchgate.service.result_views import ResultFilter, ResultView
from batchgate.service.webhooks import WebhookNotFound
from batchgate.storage.base import BatchFilter, BatchRow, WrongState
from batchgate.web import (
    backends,
    bulk,
    chart,
    deliveries,
    display,
    results,
    retry_forms,
    streams,
    submit,
)
from batchgate.web.session import (
    CSRF_FIELD,
    KEY_COOKIE,
    CsrfRefused,
    SignInNeeded,
    app_state,
    caller,
    check_csrf,
    csrf_token,
    forget_key,
    remember_csrf,
    set_cookie,
    text,
)

PAGE_SIZE = 50
RESULT_TYPES = ("succeeded", "errored", "canceled", "expired")

templates = Environment(
    loader=PackageLoader("batchgate.web"), autoescape=select_autoescape(), auto_reload=False
)
templates.globals.update(display=display, statuses=STATUSES, result_types=RESULT_TYPES)

Handler = Callable[[Request], Awaitable[Response]]


def render(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    page = templates.get_template(template).render(
        request=request, csrf=csrf_token(request), csrf_field=CSRF_FIELD, **context
    )
    response = HTMLResponse(page, status_code=status)
    remember_csrf(request, response)
    return response


def _error_page(request: Request, status: int, title: str, message: str) -> Response:
    return render(request, "error.html", status, title=title, message=message, caller=None)


def page(handler: Handler) -> Handler:
    """Turns what the service raises into pages: sign-in, 404, 403, 409."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except SignInNeeded:
            target = "/ui/signin?" + urlencode({"next": request.url.path})
            if request.headers.get("hx-request"):
                return Response(status_code=204, headers={"hx-redirect": target})
            return RedirectResponse(target, status_code=303)
        except (BatchNotFound, WebhookNotFound) as error:
            return _error_page(request, 404, "Not found", str(error))
        except CsrfRefused:
            return _error_page(
                request,
                403,
                "Refused",
                "The form's CSRF token is missing or wrong: reload the page.",
            )
        except WrongState as error:
            return _error_page(request, 409, "Not now", str(error))
        except ApiError as error:
            return _error_page(request, error.status, "Refused", error.message)

    return wrapped


def live(request: Request) -> bool:
    """A refresh of a page's moving part (htmx), not the whole page."""
    return request.headers.get("hx-request") == "true"


# --- sign-in -----------------------------------------------------------------------------------


async def signin_form(request: Request) -> Response:
    return render(request, "signin.html", next=_next(request.query_params.get("next")), caller=None)


def _next(target: str | None) -> str:
    """Where to go after signing in: only a dashboard page, never another site."""
    if target and target.startswith("/ui/"):
        return target
    return "/ui/batches"


@page
async def signin(request: Request) -> Response:
    form = await check_csrf(request)
    key = text(form, "key").strip()
    target = _next(text(form, "next"))
    try:
        await app_state(request).keyring.identify(key or None)
    except ApiError:
        return render(
            request, "signin.html", 401, next=target, caller=None, error="That key is not valid."
        )
    response = RedirectResponse(target, status_code=303)
    set_cookie(request, response, KEY_COOKIE, key)
    return response


@page
async def signout(request: Request) -> Response:
    await check_csrf(request)
    response = RedirectResponse("/ui/signin", status_code=303)
    forget_key(response)
    return response


# --- batches -----------------------------------------------------------------------------------


def _filter(request: Request) -> tuple[BatchFilter, dict[str, str]]:
    """The list's filter from the query string, and the query that keeps it across pages."""
    status = request.query_params.get("status") or None
    if status not in (None, *STATUSES):
        status = None
    label = request.query_params.get("label", "").strip()
    labels: tuple[tuple[str, str], ...] = ()
    if "=" in label:
        key, _, value = label.partition("=")
        labels = ((key.strip(), value.strip()),)
    search = request.query_params.get("q", "").strip()
    # A batch id is looked up; anything else is a custom_id searched for across the batches.
    custom_id = search if search and not search.startswith(BATCH_ID_PREFIX) else None
    kept = {"status": status or "", "label": label, "q": search}
    return BatchFilter(labels, status, custom_id), {
        name: value for name, value in kept.items() if value
    }


@dataclass(frozen=True, slots=True)
class BatchesPage:
    batches: list[BatchRow]
    query: dict[str, str]
    custom_id: str | None = None  # what the list searched its batches' requests for
    paged: bool = False  # not the first page: it stays still instead of refreshing
    newer: bool = False
    older: bool = False


async def _batches(request: Request, owner: str) -> BatchesPage:
    only, query = _filter(request)
    state = app_state(request)
    if query.get("q") and only.custom_id is None:
        # A batch id: found or not, no paging.
        try:
            return BatchesPage([await state.batches.get(owner, query["q"])], query)
        except BatchNotFound:
            return BatchesPage([], query)
    after_id = request.query_params.get("after_id") or None
    before_id = None if after_id else request.query_params.get("before_id") or None
    rows, has_more = await state.batches.list(owner, PAGE_SIZE, after_id, before_id, only)
    if before_id is not None:
        return BatchesPage(rows, query, only.custom_id, paged=has_more, newer=has_more, older=True)
    return BatchesPage(
        rows,
        query,
        only.custom_id,
        paged=after_id is not None,
        newer=after_id is not None,
        older=has_more,
    )


def common(request: Request, who: Caller) -> dict[str, Any]:
    state = app_state(request)
    return {"caller": who, "now": state.clock(), "prices": state.prices}


@page
async def batches_page(request: Request) -> Response:
    who = await caller(request)
    # Read before the batches: the page's stream starts there and misses nothing after them.
    events_after = await app_state(request).events.latest(who.owner)
    listed = await _batches(request, who.owner)
    template = "batches_rows.html" if live(request) else "batches.html"
    return render(
        request,
        template,
        events_after=events_after,
        listed=listed,
        batches=listed.batches,
        query=listed.query,
        query_string=urlencode(listed.query),
        **common(request, who),
    )


# --- one batch ---------------------------------------------------------------------------------


async def _batch(request: Request, who: Caller) -> BatchRow:
    return await app_state(request).batches.get(who.owner, request.path_params["batch_id"])


@page
async def batch_page(request: Request) -> Response:
    batch_id = request.path_params["batch_id"]
    if batch_id.startswith(OPENAI_BATCH_PREFIX):
        return RedirectResponse(f"/ui/openai/{batch_id}", status_code=307)
    who = await caller(request)
    state = app_state(request)
    events_after = await state.events.latest(who.owner)  # as for the batches page
    batch = await _batch(request, who)
    lineage = (await state.batches.lineage(who.owner, [batch])).get(batch.id)
    events = await anyio.to_thread.run_sync(chart.batch_events, state.store, who.owner, batch.id)
    sent = await anyio.to_thread.run_sync(
        state.store.batch_deliveries, who.owner, batch.id, deliveries.SHOWN
    )
    template = "batch_live.html" if live(request) else "batch.html"
    return render(
        request,
        template,
        batch=batch,
        lineage=lineage,
        events_after=events_after,
        chart=chart.chart(batch, events),
        deliveries=deliveries.shown(sent, events),
        **common(request, who),
    )


@page
async def batch_errors(request: Request) -> Response:
    who = await caller(request)
    batch = await _batch(request, who)
    store = app_state(request).store
    groups = await anyio.to_thread.run_sync(results.error_groups, store, batch.id)
    return render(request, "batch_errors.html", batch=batch, groups=groups, caller=who)


def _result_filter(request: Request) -> tuple[str | None, str | None]:
    """The results viewer's filter: a result type and a custom_id, each None for any."""
    result_type = request.query_params.get("type") or None
    if result_type not in (None, *RESULT_TYPES):
        result_type = None
    return result_type, request.query_params.get("custom_id", "").strip() or None


@page
async def batch_results(request: Request) -> Response:
    who = await caller(request)
    batch = await _batch(request, who)
    result_type, custom_id = _result_filter(request)
    try:
        number = max(0, int(request.query_params.get("page", "0")))
    except ValueError:
        number = 0
    shown = await anyio.to_thread.run_sync(
        results.results_page, app_state(request).store, batch.id, result_type, custom_id, number
    )
    query = {"type": result_type or "", "custom_id": custom_id or ""}
    return render(
        request,
        "batch_results.html",
        batch=batch,
        shown=shown,
        page_number=number,
        query={name: value for name, value in query.items() if value},
        **common(request, who),
    )


@page
async def download(request: Request) -> Response:
    """The results as the API's results endpoint serves them, for the signed-in key: all, or
    those of the results viewer's filter."""
    who = await caller(request)
    batch_id = request.path_params["batch_id"]
    result_type, custom_id = _result_filter(request)
    wanted = ResultFilter(
        frozenset([result_type] if result_type else []),
        frozenset([custom_id] if custom_id else []),
    )
    _, lines = await app_state(request).batches.results(who.owner, batch_id, ResultView(), wanted)
    return StreamingResponse(
        lines,
        media_type="application/x-jsonl",
        headers={"content-disposition": f"attachment; filename={batch_id}_results.jsonl"},
    )


# --- actions: each checks the CSRF token, then the key's right to act --------------------------


async def acting(request: Request) -> tuple[Caller, str]:
    await check_csrf(request)
    who = await caller(request)
    require_write(who)
    return who, request.path_params["batch_id"]


@page
async def cancel(request: Request) -> Response:
    who, batch_id = await acting(request)
    await app_state(request).batches.cancel(who.owner, batch_id)
    return RedirectResponse(f"/ui/batches/{batch_id}", status_code=303)


@page
async def retry_failed(request: Request) -> Response:
    """Retries the requests the form chose (by default the errored and expired ones) as a new
    batch, and shows it."""
    who, batch_id = await acting(request)
    selection = retry_forms.message_batch_selection(await request.form())
    child = await app_state(request).batches.retry(who.owner, batch_id, selection)
    return RedirectResponse(f"/ui/batches/{child.id}", status_code=303)


@page
async def redeliver(request: Request) -> Response:
    """Attempts one of the batch's deliveries to a workspace endpoint again, now."""
    who, batch_id = await acting(request)
    state = app_state(request)
    delivery_id = request.path_params["delivery_id"]
    sent = await anyio.to_thread.run_sync(
        state.store.batch_deliveries, who.owner, batch_id, deliveries.SHOWN
    )
    webhook_id = next((d.webhook_id for d in sent if d.id == delivery_id), None)
    if webhook_id is None:
        raise WebhookNotFound(f"No delivery {delivery_id} of batch {batch_id} to an endpoint.")
    await state.webhooks.redeliver(who.owner, webhook_id, delivery_id)
    return RedirectResponse(f"/ui/batches/{batch_id}", status_code=303)


@page
async def delete(request: Request) -> Response:
    who, batch_id = await acting(request)
    await app_state(request).batches.delete(who.owner, batch_id)
    return RedirectResponse("/ui/batches", status_code=303)


# --- bulk actions: on every batch the list's filter shows, previewed first -------------------


def _bulk_action(value: str) -> bulk.Action:
    for action in bulk.ACTIONS:
        if value == action:
            return action
    raise ApiError(400, f"No bulk action {value!r}: cancel or delete.")


@page
async def bulk_preview(request: Request) -> Response:
    who = await caller(request)
    only, query = _filter(request)
    action = _bulk_action(request.query_params.get("action", ""))
    preview = await bulk.preview(app_state(request).batches, who.owner, only, action)
    return render(request, "bulk.html", preview=preview, query=query, **common(request, who))


@page
async def bulk_apply(request: Request) -> Response:
    form = await check_csrf(request)
    who = await caller(request)
    require_write(who)
    only, query = _filter(request)
    outcome = await bulk.apply(
        app_state(request).batches,
        who.owner,
        only,
        _bulk_action(text(form, "action")),
        text(form, "through_id"),
    )
    return render(request, "bulk.html", outcome=outcome, query=query, **common(request, who))


# --- submit ------------------------------------------------------------------------------------


@page
async def submit_form(request: Request) -> Response:
    who = await caller(request)
    return render(request, "submit.html", form={}, **common(request, who))


@page
async def submit_batch(request: Request) -> Response:
    form = await check_csrf(request)
    who = await caller(request)
    require_write(who)
    upload = form.get("file")
    content = b""
    if upload is not None and not isinstance(upload, str):
        content = await upload.read(app_state(request).settings.max_body_bytes + 1)
    if not content.strip():
        content = text(form, "prompts").encode()
    prompts = None
    if text(form, "format") == "prompts":
        try:
            max_tokens = int(text(form, "max_tokens"))
        except ValueError:
            max_tokens = 0
        prompts = PromptSettings(text(form, "model").strip(), max_tokens)
        if not prompts.model or max_tokens < 1:
            return _refused(
                request, who, form, "Prompts need a model and max_tokens of at least 1."
            )
    try:
        created = await submit.submit(app_state(request), who, content, prompts)
    except ApiError as error:
        return _refused(request, who, form, error.message)
    if isinstance(created, submit.Refused):
        return _refused(request, who, form, created.message, created.rejected)
    return RedirectResponse(f"/ui/batches/{created.id}", status_code=303)


def _refused(
    request: Request,
    who: Caller,
    form: FormData,
    message: str,
    rejected: list[RejectedLine] | None = None,
) -> Response:
    fields = {name: text(form, name) for name in ("format", "model", "max_tokens", "prompts")}
    return render(
        request,
        "submit.html",
        400,
        form=fields,
        error=message,
        rejected=(rejected or [])[:PROBLEMS_SHOWN],
        more=max(0, len(rejected or []) - PROBLEMS_SHOWN),
        **common(request, who),
    )


@page
async def backends_page(request: Request) -> Response:
    who = await caller(request)
    numbers = await anyio.to_thread.run_sync(backends.backend_numbers)
    template = "backends_live.html" if live(request) else "backends.html"
    return render(request, template, numbers=numbers, **common(request, who))


async def home(request: Request) -> Response:
    return RedirectResponse("/ui/batches", status_code=307)


@page
async def not_found(request: Request) -> Response:
    return _error_page(request, 404, "Not found", f"No page at {request.url.path}.")


routes = [
    Route("/ui", home),
    Mount(
        "/ui",
        routes=[
            Route("/", home),
            Mount("/static", StaticFiles(packages=[("batchgate.web", "static")]), name="static"),
            Route("/signin", signin_form, methods=["GET"]),
            Route("/signin", signin, methods=["POST"]),
            Route("/signout", signout, methods=["POST"]),
            Route("/batches", batches_page),
            Route("/events", page(streams.workspace_events)),
            Route("/backends", backends_page),
            Route("/submit", submit_form, methods=["GET"]),
            Route("/submit", submit_batch, methods=["POST"]),
            Route("/batches/bulk", bulk_preview, methods=["GET"]),
            Route("/batches/bulk", bulk_apply, methods=["POST"]),
            Route("/batches/{batch_id}", batch_page),
            Route("/batches/{batch_id}/events", page(streams.batch_events)),
            Route("/batches/{batch_id}/errors", batch_errors),
            Route("/batches/{batch_id}/results", batch_results),
            Route("/batches/{batch_id}/results.jsonl", download),
            Route("/batches/{batch_id}/cancel", cancel, methods=["POST"]),
            Route("/batches/{batch_id}/retry", retry_failed, methods=["POST"]),
            Route("/batches/{batch_id}/delete", delete, methods=["POST"]),
            Route(
                "/batches/{batch_id}/deliveries/{delivery_id:int}/redeliver",
                redeliver,
                methods=["POST"],
            ),
            Route("/{rest:path}", not_found),
        ],
    ),
]
