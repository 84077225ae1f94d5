"""The OpenAI Files endpoints (/v1/files), as the openai SDK's `files` calls them.

An upload is parsed as it arrives (python-multipart's streaming parser, fed the body's chunks on
a worker thread): the file part goes to a temporary file past its first megabyte, never into
memory whole, and is then stored in pieces. A batch's output and error files are listed and
read here too (service/openai_batches.py makes them from its results).
"""

from typing import Any

import anyio
import anyio.to_thread
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import Field, File, FormParser, parse_options_header
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from batchgate.api.batches import acting_context, context, json_response
from batchgate.api.errors import ApiError
from batchgate.storage.openai_tables import FileRow

PURPOSES = ("batch",)
# What a file part may keep in memory before it goes to a temporary file.
IN_MEMORY_BYTES = 1024 * 1024
# The body is handed to the parser this much at a time, each on a worker thread.
PARSE_BYTES = 1024 * 1024
# The multipart framing and the purpose field, beyond the file's own bytes.
FORM_OVERHEAD_BYTES = 64 * 1024
# How long a file may be kept, as OpenAI's `expires_after` (and a batch's `output_expires_after`)
# allows: an hour to 30 days after its creation, the only anchor.
EXPIRES_SECONDS = (3600, 30 * 24 * 3600)
EXPIRES_ANCHOR = "created_at"


def expires_seconds(anchor: object, seconds: object, param: str) -> int:
    """The seconds of an `expires_after` (`param`): the anchor `created_at` and a whole number of
    seconds within EXPIRES_SECONDS."""
    if anchor != EXPIRES_ANCHOR:
        raise ApiError(
            400,
            f"{param}.anchor: must be {EXPIRES_ANCHOR!r}, not {anchor!r}",
            param=f"{param}.anchor",
        )
    low, high = EXPIRES_SECONDS
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not low <= seconds <= high:
        raise ApiError(
            400,
            f"{param}.seconds: must be a whole number of seconds from {low} to {high},"
            f" not {seconds!r}",
            param=f"{param}.seconds",
        )
    return seconds


def _form_number(text: str | None) -> object:
    """A form field's whole number, written in ASCII digits; anything else as it came, for the
    check to refuse."""
    if text is not None and text.isascii() and text.isdigit() and len(text) <= 18:
        return int(text)
    return text


def file_object(file: FileRow) -> dict[str, Any]:
    return {
        "id": file.id,
        "object": "file",
        "bytes": file.bytes,
        "created_at": int(file.created_at),
        "filename": file.filename,
        "purpose": file.purpose,
        "status": "processed",
        "expires_at": None if file.expires_at is None else int(file.expires_at),
        "status_details": None,
    }


class _Upload:
    """The form's fields and its file part, as the parser finds them."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.file: File | None = None

    def on_field(self, field: Field) -> None:
        name = (field.field_name or b"").decode("utf-8", "replace")
        value = field.value or b""
        self.fields[name] = value.decode("utf-8", "replace")

    def on_file(self, file: File) -> None:
        if file.field_name != b"file":
            file.close()
            return
        if self.file is not None:
            self.file.close()
        self.file = file


async def _parse_upload(request: Request, limit: int, timeout: float) -> _Upload:
    content_type = request.headers.get("content-type", "")
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise ApiError(400, "The body must be multipart/form-data with a `file` and a `purpose`.")
    most = limit + FORM_OVERHEAD_BYTES
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > most:
        raise ApiError(413, f"The file is larger than this server's limit of {limit} bytes.")
    upload = _Upload()
    parser = FormParser(
        "multipart/form-data",
        upload.on_field,
        upload.on_file,
        boundary=boundary,
        config={"MAX_MEMORY_FILE_SIZE": IN_MEMORY_BYTES},
    )
    received = 0
    pending: list[bytes] = []
    pending_bytes = 0
    try:
        with anyio.fail_after(timeout):
            async for chunk in request.stream():
                received += len(chunk)
                if received > most:
                    raise ApiError(
                        413, f"The file is larger than this server's limit of {limit} bytes."
                    )
                pending.append(chunk)
                pending_bytes += len(chunk)
                if pending_bytes >= PARSE_BYTES:
                    await anyio.to_thread.run_sync(parser.write, b"".join(pending))
                    pending, pending_bytes = [], 0
            await anyio.to_thread.run_sync(parser.write, b"".join(pending))
            await anyio.to_thread.run_sync(parser.finalize)
    except TimeoutError:
        _discard(upload)
        raise ApiError(408, f"The upload was not received within {timeout:.0f} s.") from None
    except FormParserError as error:
        _discard(upload)
        raise ApiError(400, f"The multipart body could not be read: {error}") from None
    except BaseException:
        _discard(upload)
        raise
    return upload


def _discard(upload: _Upload) -> None:
    if upload.file is not None:
        upload.file.close()


async def upload_file(request: Request) -> Response:
    state, owner = await acting_context(request)
    limit = state.settings.openai_max_file_bytes
    upload = await _parse_upload(request, limit, state.settings.body_timeout_seconds)
    try:
        purpose = upload.fields.get("purpose")
        if purpose not in PURPOSES:
            raise ApiError(400, f"purpose: must be 'batch', not {purpose!r}", param="purpose")
        if upload.file is None:
            raise ApiError(400, "file: a file part named `file` is required", param="file")
        anchor = upload.fields.get("expires_after[anchor]")
        seconds = upload.fields.get("expires_after[seconds]")
        expires = None
        if anchor is not None or seconds is not None:
            expires = expires_seconds(anchor, _form_number(seconds), "expires_after")
        if upload.file.size > limit:
            raise ApiError(413, f"The file is larger than this server's limit of {limit} bytes.")
        filename = (upload.file.file_name or b"file.jsonl").decode("utf-8", "replace")
        file = await state.openai.create_file(
            owner, upload.file.file_object, upload.file.size, filename, purpose, expires
        )
    finally:
        _discard(upload)
    return json_response(file_object(file))


def _limit(request: Request, default: int, most: int) -> int:
    raw = request.query_params.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise ApiError(
            400, f"limit: must be an integer from 1 to {most}, not {raw!r}", param="limit"
        )
    return int(raw)


async def list_files(request: Request) -> Response:
    state, owner = await context(request)
    order = request.query_params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ApiError(400, f"order: must be 'asc' or 'desc', not {order!r}", param="order")
    page, has_more = await state.openai.list_files(
        owner,
        request.query_params.get("purpose") or None,
        request.query_params.get("after") or None,
        _limit(request, 10_000, 10_000),
        order == "asc",
    )
    return json_response(
        {
            "object": "list",
            "data": [file_object(file) for file in page],
            "first_id": page[0].id if page else None,
            "last_id": page[-1].id if page else None,
            "has_more": has_more,
        }
    )


async def retrieve_file(request: Request) -> Response:
    state, owner = await context(request)
    return json_response(file_object(await state.openai.get_file(owner, request.path_params["id"])))


async def file_content(request: Request) -> Response:
    state, owner = await context(request)
    content = await state.openai.file_content(owner, request.path_params["id"])
    return StreamingResponse(content, media_type="application/octet-stream")


async def delete_file(request: Request) -> Response:
    state, owner = await acting_context(request)
    file_id = request.path_params["id"]
    await state.openai.delete_file(owner, file_id)
    return json_response({"id": file_id, "object": "file", "deleted": True})


routes = [
    Route("/v1/files", upload_file, methods=["POST"]),
    Route("/v1/files", list_files, methods=["GET"]),
    Route("/v1/files/{id}", retrieve_file, methods=["GET"]),
    Route("/v1/files/{id}", delete_file, methods=["DELETE"]),
    Route("/v1/files/{id}/content", file_content, methods=["GET"]),
]
