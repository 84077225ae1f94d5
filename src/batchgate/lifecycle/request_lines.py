"""Requests of a batch as lines of a file, checked line by line before anything is sent: by the
CLI (`batchgate submit`, cli/client/request_file.py) and the dashboard's submit page, with the
same messages.

Two formats: JSONL, one `{"custom_id", "params"}` object a line, as the API takes them; or plain
prompts, one a line, which become requests for one model with custom_ids naming their line.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

BatchRequest = dict[str, Any]

CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
# Enough to fix a file in one go without burying the terminal when every line is wrong.
PROBLEMS_SHOWN = 20


@dataclass(frozen=True)
class PromptSettings:
    """What turns a plain prompt into a request."""

    model: str
    max_tokens: int


class InvalidLine(Exception):
    """One line of the file cannot be a request; the message says why."""


@dataclass(frozen=True)
class RejectedLine:
    """A line of the file that cannot be a request, as read (without its line ending)."""

    number: int
    reason: str
    text: bytes


@dataclass(frozen=True)
class RequestFile:
    """The requests a file holds, and its lines that cannot be requests."""

    requests: list[BatchRequest]
    rejected: list[RejectedLine]


def _check_params(params: object) -> None:
    if not isinstance(params, dict):
        raise InvalidLine("params must be an object")
    model = params.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidLine("params.model must be a non-empty string")
    max_tokens = params.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidLine("params.max_tokens must be a whole number of at least 1")
    messages = params.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidLine("params.messages must be a non-empty array")


def _parse_request(line: bytes) -> BatchRequest:
    try:
        request = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise InvalidLine(f"not valid JSON ({error})") from None
    if not isinstance(request, dict):
        raise InvalidLine('expected an object {"custom_id": ..., "params": {...}}')
    unexpected = sorted(set(request) - {"custom_id", "params"})
    if unexpected:
        raise InvalidLine(f"unexpected key {unexpected[0]!r}: a request holds custom_id and params")
    custom_id = request.get("custom_id")
    if not isinstance(custom_id, str) or not CUSTOM_ID.fullmatch(custom_id):
        raise InvalidLine(
            f"custom_id {custom_id!r} must be 1-64 letters, digits, '_' or '-'"
            if custom_id is not None
            else "custom_id is missing"
        )
    _check_params(request.get("params"))
    return request


def _prompt_request(line: bytes, line_number: int, settings: PromptSettings) -> BatchRequest:
    try:
        prompt = line.decode().rstrip("\r\n")
    except UnicodeDecodeError:
        raise InvalidLine("not UTF-8 text") from None
    return {
        "custom_id": f"line-{line_number}",
        "params": {
            "model": settings.model,
            "max_tokens": settings.max_tokens,
            "messages": [{"role": "user", "content": prompt}],
        },
    }


def problem_lines(rejected: list[RejectedLine]) -> str:
    """'  line N: reason' for each of the first PROBLEMS_SHOWN, then how many more there are."""
    shown = [f"line {line.number}: {line.reason}" for line in rejected[:PROBLEMS_SHOWN]]
    if len(rejected) > len(shown):
        shown.append(f"... and {len(rejected) - len(shown)} more")
    return "\n".join(f"  {problem}" for problem in shown)


def read_request_lines(
    lines: Iterable[bytes], prompts: PromptSettings | None = None
) -> RequestFile:
    """The requests of the lines (JSONL, or one prompt a line when `prompts` is given) and the
    lines that cannot be requests. Blank lines are skipped."""
    requests: list[BatchRequest] = []
    rejected: list[RejectedLine] = []
    first_line_of: dict[str, int] = {}
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            if prompts is None:
                request = _parse_request(line)
            else:
                request = _prompt_request(line, line_number, prompts)
            custom_id = request["custom_id"]
            if custom_id in first_line_of:
                raise InvalidLine(
                    f"custom_id {custom_id!r} repeats line {first_line_of[custom_id]}"
                )
        except InvalidLine as problem:
            rejected.append(RejectedLine(line_number, str(problem), line.rstrip(b"\r\n")))
            continue
        first_line_of[custom_id] = line_number
        requests.append(request)
    return RequestFile(requests, rejected)
