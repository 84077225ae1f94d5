"""The lines of an OpenAI batch's output and error files, as the engine commits them.

Each line is `{"id": "batch_req_…", "custom_id", "response", "error"}`. A request the endpoint
answered has a `response` with its HTTP status and body: 2xx lines make the output file, the
others the error file. A request that never ran (the batch was cancelled or expired) has no
response and an `error` instead. The functions mirror lifecycle/results.py, so the engine
writes either format the same way.
"""

import itertools
import secrets

import orjson

# Anthropic's error types (errors.RequestError) as the HTTP status of the answer they stand for.
STATUS_OF_ERROR_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 503,
    "timeout_error": 504,
}
CANCELLED_CODE = "batch_cancelled"
EXPIRED_CODE = "batch_expired"
CANCELLED_MESSAGE = "This request was not executed because the batch was cancelled."
EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."


# Line and request ids: random per process, then counted, which costs a tenth of drawing each
# (the engine writes hundreds of thousands a second); unique across processes and restarts.
_PROCESS_PREFIX = secrets.token_hex(10)
_PROCESS_PREFIX_BYTES = _PROCESS_PREFIX.encode()
_counter = itertools.count()
# A succeeded line as orjson writes its dict, filled in by formatting: the engine writes one per
# request, and the dicts around the body cost more than the body's own encoding.
_SUCCEEDED = (
    b'{"id":"batch_req_%s","custom_id":%s,'
    b'"response":{"status_code":200,"request_id":"req_%s","body":%s},"error":null}'
)


def _ids() -> tuple[str, str]:
    """A line's id and its response's request id."""
    number = f"{_PROCESS_PREFIX}{next(_counter):012x}"
    return "batch_req_" + number, "req_" + number


def succeeded(custom_id: str, body_json: bytes) -> bytes:
    """The line of a request answered with the JSON `body_json`."""
    # Formatted as bytes at once, not as a string then encoded.
    number = b"%b%012x" % (_PROCESS_PREFIX_BYTES, next(_counter))
    return _SUCCEEDED % (number, orjson.dumps(custom_id), number, body_json)


def errored(custom_id: str, error_type: str, message: str) -> bytes:
    status = STATUS_OF_ERROR_TYPE.get(error_type, 500)
    body = {"error": {"message": message, "type": error_type, "param": None, "code": None}}
    line_id, request_id = _ids()
    return orjson.dumps(
        {
            "id": line_id,
            "custom_id": custom_id,
            "response": {"status_code": status, "request_id": request_id, "body": body},
            "error": None,
        }
    )


def _not_run(custom_id: str, code: str, message: str) -> bytes:
    return orjson.dumps(
        {
            "id": _ids()[0],
            "custom_id": custom_id,
            "response": None,
            "error": {"code": code, "message": message},
        }
    )


def canceled(custom_id: str) -> bytes:
    return _not_run(custom_id, CANCELLED_CODE, CANCELLED_MESSAGE)


def expired(custom_id: str) -> bytes:
    return _not_run(custom_id, EXPIRED_CODE, EXPIRED_MESSAGE)


# Where a line written here says its status, which always has three digits (200, or one of
# STATUS_OF_ERROR_TYPE): a 2 first is a 2xx. Nothing before it can hold these bytes: in the id
# and the custom_id (JSON strings) every quote is escaped.
_STATUS_AT = b'"response":{"status_code":'
_TWO = ord("2")


def is_output(line: bytes) -> bool:
    """Whether a line belongs in the output file (a 2xx response), not the error file."""
    status_at = line.find(_STATUS_AT)
    if status_at < 0:
        return _decoded_is_output(line)
    return line[status_at + len(_STATUS_AT)] == _TWO


def output_and_error_bytes(lines: bytes) -> tuple[int, int]:
    """How many of the bytes of `lines` (each ending in a newline, as the results store them)
    belong to the output file, and how many to the error file.

    Read from the bytes in place rather than decoded or split: an ended batch's output file is
    sized by reading every line of the batch."""
    output = start = 0
    while start < len(lines):
        end = lines.find(b"\n", start) + 1 or len(lines)
        status_at = lines.find(_STATUS_AT, start, end)
        if (
            lines[status_at + len(_STATUS_AT)] == _TWO
            if status_at >= 0
            else _decoded_is_output(lines[start:end])
        ):
            output += end - start
        start = end
    return output, len(lines) - output


def _decoded_is_output(line: bytes) -> bool:
    """is_output of a line with no response (a request that never ran), or of another shape."""
    response = orjson.loads(line).get("response")
    return response is not None and 200 <= response.get("status_code", 0) < 300
