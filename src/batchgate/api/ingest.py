"""Reading and checking a create body without keeping the params it carries decoded.

Each request's `params` stays the raw bytes the client sent (msgspec.Raw): params are validated
later, per request, by the engine (as Anthropic does), and storing them needs no re-encoding.
Only their JSON is checked here, since Anthropic refuses a body that is not valid JSON as a
whole, and a request the engine could not even decode would have no way to end.
"""

import codecs
import re
from collections.abc import Iterator

import anyio
import msgspec
import orjson
from starlette.requests import Request

from batchgate.api.batch_options import CreateExtensions
from batchgate.api.errors import ApiError
from batchgate.storage.base import NewChunk

CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
MSGSPEC_LOCATION = re.compile(r"^(?P<what>.*) - at `\$(?P<path>[^`]*)`$")
MAX_QUOTED = 200
UTF8_CHECK_SLICE = 1 << 20
# For a refusal before the whole body was read: uvicorn would otherwise go on reading (and
# discarding) the rest, keeping the connection as long as the client likes.
CLOSE_CONNECTION = {"connection": "close"}


class BatchRequest(msgspec.Struct, forbid_unknown_fields=True):
    custom_id: str
    params: msgspec.Raw


class CreateBody(CreateExtensions, forbid_unknown_fields=True, kw_only=True):
    requests: list[BatchRequest]


async def read_capped_body(request: Request, limit: int, timeout: float) -> bytearray:
    """The body, refused past `limit` bytes (413) or when not all there within `timeout` (408)."""
    too_large = ApiError(
        413, f"Request body exceeds the maximum size of {limit} bytes.", CLOSE_CONNECTION
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    with anyio.move_on_after(timeout):
        async for piece in request.stream():
            body += piece
            if len(body) > limit:
                raise too_large
        return body
    raise ApiError(
        408,
        f"The request body did not arrive within {timeout:g} seconds.",
        CLOSE_CONNECTION,
    )


def _dotted(path: str) -> str:
    """`.requests[3].custom_id` → `requests.3.custom_id`, the style of Anthropic's messages."""
    return re.sub(r"\[(\d+)\]", r".\1", path).lstrip(".")


def _clipped(text: str) -> str:
    """Messages quote what the client sent (an unknown key), which may be megabytes long."""
    return text if len(text) <= MAX_QUOTED else f"{text[:MAX_QUOTED]}… (clipped)"


def decode_create_body(body: bytearray | bytes) -> CreateBody:
    try:
        return msgspec.json.decode(body, type=CreateBody)
    except msgspec.ValidationError as error:
        found = MSGSPEC_LOCATION.match(str(error))
        if found is None:
            raise ApiError(400, f"Invalid request body: {_clipped(str(error))}") from error
        location = _dotted(found["path"]) or "body"
        raise ApiError(400, f"{location}: {_clipped(found['what'])}") from error
    except (msgspec.DecodeError, UnicodeDecodeError) as error:
        raise ApiError(400, _undecodable(body, error)) from error
    except RecursionError:
        raise ApiError(400, "Request body is not valid JSON: it is nested too deeply") from None


def _undecodable(body: bytearray | bytes, error: Exception) -> str:
    """Why a body does not decode. Invalid UTF-8 is named as such whatever the JSON library
    raises for it (msgspec's exception and wording for it changed between releases)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(body)
    try:
        # A slice at a time: a 256 MB body is never copied whole into a string.
        for start in range(0, len(view), UTF8_CHECK_SLICE):
            decoder.decode(view[start : start + UTF8_CHECK_SLICE])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as invalid:
        # Its position is the slice's; the byte itself says enough.
        byte = invalid.object[invalid.start]
        return f"Request body is not valid UTF-8: {invalid.reason} (byte {byte:#04x})"
    return f"Request body is not valid JSON: {error}"


def check_requests(requests: list[BatchRequest], max_requests: int) -> list[str]:
    """Checks what Anthropic checks at create time; returns the custom_ids in order."""
    if not requests:
        raise ApiError(400, "requests: List should have at least 1 item after validation, not 0")
    if len(requests) > max_requests:
        raise ApiError(
            400,
            f"requests: List should have at most {max_requests} items after validation,"
            f" not {len(requests)}",
        )
    custom_ids = [request.custom_id for request in requests]
    seen: set[str] = set()
    for index, (custom_id, request) in enumerate(zip(custom_ids, requests, strict=True)):
        if CUSTOM_ID.fullmatch(custom_id) is None:
            raise ApiError(
                400,
                f"requests.{index}.custom_id: must be 1 to 64 characters of letters, digits,"
                f" '_' or '-' (got {custom_id[:80]!r})",
            )
        if custom_id in seen:
            raise ApiError(
                400, f"requests.{index}.custom_id: {custom_id!r} is used by an earlier request"
            )
        seen.add(custom_id)
        params = memoryview(request.params)
        if bytes(params[:1]) != b"{":
            raise ApiError(400, f"requests.{index}.params: Input should be an object")
        # Skipping params as Raw checked neither their UTF-8 nor the range of their numbers.
        try:
            orjson.loads(params)
        except orjson.JSONDecodeError as error:
            raise ApiError(400, f"requests.{index}.params: not valid JSON: {error}") from None
    return custom_ids


def into_chunks(
    requests: list[BatchRequest], custom_ids: list[str], chunk_size: int
) -> Iterator[NewChunk]:
    for start in range(0, len(requests), chunk_size):
        ids = custom_ids[start : start + chunk_size]
        params = b",".join(request.params for request in requests[start : start + chunk_size])
        yield NewChunk(count=len(ids), custom_ids=orjson.dumps(ids), params=b"[" + params + b"]")
