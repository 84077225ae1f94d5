"""The OpenAI Files endpoints (/v1/files), as the openai SDK's `files` calls them.

An upload is parsed as it arrives (python-multipart's streaming parser, fed each chunk of the
body): the file part is stored in pieces as they fill (service/file_uploads.py), never held whole
nor written to a temporary file, and becomes a file once the whole body has arrived. A batch's
output and error files are listed and read here too (service/openai_batches.py makes them from
its results).
"""

from collections.abc import Callable
from typing import Any, Protocol

import anyio
import anyio.to_thread
from python_multipart.decoders import Base64Decoder, QuotedPrintableDecoder
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from batchgate.api.batches import acting_context, context, json_response
from batchgate.api.errors import ApiError
from batchgate.service.file_uploads import FileUpload
from batchgate.storage.openai_tables import FileRow

PURPOSES = ("batch",)
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


class UploadForm:
    """The multipart form as the parser finds it: its fields, and each part named `file` that is
    a file, stored as it arrives (`uploads`); the last one that ended whole is the form's `file`,
    with its filename."""

    def __init__(self, boundary: bytes, new_upload: Callable[[], FileUpload]) -> None:
        self.fields: dict[str, str] = {}
        self.uploads: list[FileUpload] = []
        self.file: tuple[str, FileUpload] | None = None
        self._new_upload = new_upload
        self._headers: dict[bytes, bytes] = {}
        self._header_name: list[bytes] = []
        self._header_value: list[bytes] = []
        self._part: _Part | None = None
        self.parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._headers.clear,
                "on_header_field": lambda data, start, end: self._header_name.append(
                    data[start:end]
                ),
                "on_header_value": lambda data, start, end: self._header_value.append(
                    data[start:end]
                ),
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
            },
        )

    @property
    def upload(self) -> FileUpload | None:
        """The file part being received, or the last one."""
        return self.uploads[-1] if self.uploads else None

    def _header_end(self) -> None:
        name = b"".join(self._header_name).lower()
        self._headers[name] = b"".join(self._header_value).strip(b" \t")
        self._header_name.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        disposition = self._headers.get(b"content-disposition")
        _, options = parse_options_header(disposition)
        name, filename = options.get(b"name"), options.get(b"filename")
        if name is None:
            raise FormParserError(f"Field name not found in Content-Disposition: {disposition!r}")
        sink: _Part
        if filename is None:
            sink = _Field(self.fields, name.decode("utf-8", "replace"))
        elif name == b"file":
            upload = self._new_upload()
            self.uploads.append(upload)
            sink = _FileData(self, (filename or b"file.jsonl").decode("utf-8", "replace"), upload)
        else:
            sink = _Ignored()
        encoding = self._headers.get(b"content-transfer-encoding", b"7bit").lower()
        # As python-multipart's FormParser: an unknown encoding is read as no encoding.
        self._part = (
            Base64Decoder(sink)
            if encoding == b"base64"
            else QuotedPrintableDecoder(sink)
            if encoding == b"quoted-printable"
            else sink
        )

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        assert self._part is not None
        self._part.write(data[start:end])

    def _part_end(self) -> None:
        assert self._part is not None
        self._part.finalize()
        self._part = None


class _Part(Protocol):
    def write(self, data: bytes) -> Any: ...

    def finalize(self) -> Any: ...


class _Field:
    def __init__(self, fields: dict[str, str], name: str) -> None:
        self._fields, self._name, self._value = fields, name, bytearray()

    def write(self, data: bytes) -> None:
        self._value += data

    def finalize(self) -> None:
        self._fields[self._name] = self._value.decode("utf-8", "replace")


class _FileData:
    def __init__(self, form: UploadForm, filename: str, upload: FileUpload) -> None:
        self._form, self._file = form, (filename, upload)
        self.write = upload.write

    def finalize(self) -> None:
        self._form.file = self._file


class _Ignored:
    def write(self, data: bytes) -> None:
        pass

    def finalize(self) -> None:
        pass


async def _receive_form(request: Request, form: UploadForm, limit: int, timeout: float) -> None:
    """Parses the body as it arrives, each file part's pieces stored meanwhile."""
    most = limit + FORM_OVERHEAD_BYTES
    received = 0
    try:
        with anyio.fail_after(timeout):
            async for chunk in request.stream():
                received += len(chunk)
                if received > most:
                    raise _too_large(limit)
                form.parser.write(chunk)
                upload = form.upload
                if upload is not None:
                    if upload.size > limit:
                        raise _too_large(limit)
                    await upload.store_written()
            form.parser.finalize()
    except TimeoutError:
        raise ApiError(408, f"The upload was not received within {timeout:.0f} s.") from None
    except FormParserError as error:
        raise ApiError(400, f"The multipart body could not be read: {error}") from None


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"The file is larger than this server's limit of {limit} bytes.")


async def upload_file(request: Request) -> Response:
    state, owner = await acting_context(request)
    limit = state.settings.openai_max_file_bytes
    content_type = request.headers.get("content-type", "")
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise ApiError(400, "The body must be multipart/form-data with a `file` and a `purpose`.")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + FORM_OVERHEAD_BYTES:
        raise _too_large(limit)
    form = UploadForm(boundary, state.openai.new_upload)
    try:
        await _receive_form(request, form, limit, state.settings.body_timeout_seconds)
        purpose = form.fields.get("purpose")
        if purpose not in PURPOSES:
            raise ApiError(400, f"purpose: must be 'batch', not {purpose!r}", param="purpose")
        if form.file is None:
            raise ApiError(400, "file: a file part named `file` is required", param="file")
        anchor = form.fields.get("expires_after[anchor]")
        seconds = form.fields.get("expires_after[seconds]")
        expires = None
        if anchor is not None or seconds is not None:
            expires = expires_seconds(anchor, _form_number(seconds), "expires_after")
        filename, upload = form.file
        for other in form.uploads:
            if other is not upload:
                await other.discard()
        file = await state.openai.finish_upload(upload, owner, filename, purpose, expires)
    except BaseException:
        for started in form.uploads:
            await started.discard()
        raise
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
