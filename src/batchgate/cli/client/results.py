"""Streaming a batch's results to a file or stdout: as the API sends them, or as text lines."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Collection, Generator, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson
import typer

if TYPE_CHECKING:
    import anthropic


class ResultType(StrEnum):
    succeeded = "succeeded"
    errored = "errored"
    canceled = "canceled"
    expired = "expired"


_TEXT_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _summary(outcome: dict[str, Any]) -> str:
    if outcome["type"] == "succeeded":
        blocks = outcome["message"]["content"]
        return next((block["text"] for block in blocks if block["type"] == "text"), "")
    if outcome["type"] == "errored":
        # Anthropic nests the error ({"type": "error", "error": {...}}); batchgate does too.
        error = outcome["error"]
        details = error.get("error", error)
        return f"[errored] {details.get('type')}: {details.get('message')}"
    return f"[{outcome['type']}]"


def text_line(result: dict[str, Any]) -> str:
    """`custom_id<TAB>first text block`, escaped so that every result takes exactly one line."""
    return f"{result['custom_id']}\t{_summary(result['result']).translate(_TEXT_ESCAPES)}"


@contextmanager
def open_output(path: Path | None) -> Iterator[BinaryIO]:
    """The file at `path`, or stdout when there is none."""
    if path is None:
        try:
            yield typer.get_binary_stream("stdout")
        except BrokenPipeError:
            # The reader had enough (`| head`): stop quietly, as command-line tools do, with
            # stdout on /dev/null so that the interpreter's last flush finds no broken pipe.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    with path.open("wb") as file:
        yield file


# How often `--follow` asks again, a second apart, when its response breaks off (the server
# restarted, a balancer moved it) before it gives up.
FOLLOW_RECONNECTS = 30


def _extension_response(client: anthropic.Anthropic, batch_id: str, view: dict[str, str]) -> Any:
    """The SDK's HTTP response of the results endpoint with batchgate's `view` parameters
    (follow, merged), unread: the SDK's own `results` wants an ended batch's results_url."""
    from anthropic import Stream

    # With stream=True the SDK hands the response to the stream class unparsed; only its raw
    # lines are read, never the stream's own decoding.
    stream = client.get(
        f"/v1/messages/batches/{batch_id}/results",
        cast_to=object,
        stream=True,
        stream_cls=Stream[object],
        options={"params": view},
    )
    return stream.response


def _extension_lines(
    client: anthropic.Anthropic, batch_id: str, view: dict[str, str]
) -> Generator[str]:
    """The lines of the results `view` asks for. A followed response that breaks off is asked
    for again from the same place, skipping the whole lines already had (docs/api.md)."""
    from anthropic import APIConnectionError

    received = 0
    failures = 0
    while True:
        params = {**view, "skip_lines": str(received)} if received else view
        try:
            response = _extension_response(client, batch_id, params)
        except APIConnectionError:
            if "follow" not in view or failures == FOLLOW_RECONNECTS:
                raise
            failures += 1
            time.sleep(1)
            continue
        # The HTTP library the SDK runs on (httpx, or its successor in newer SDKs).
        transport_error = sys.modules[type(response).__module__.split(".")[0]].HTTPError
        try:
            for line in response.iter_lines():
                if line:
                    received += 1
                    failures = 0
                    yield line
            return
        except transport_error:
            if "follow" not in view or failures == FOLLOW_RECONNECTS:
                raise
            failures += 1
        finally:
            response.close()


def write_results(
    client: anthropic.Anthropic,
    batch_id: str,
    output: BinaryIO,
    types: Collection[ResultType] = (),
    as_text: bool = False,
    view: dict[str, str] | None = None,
) -> int:
    """Streams the results of an ended batch to `output`; returns how many lines were written.
    With a `view` (batchgate's follow or merged), those it asks for, each line as it comes.

    Without a filter or `as_text`, lines go out exactly as the API sent them.
    """
    wanted = {result_type.value for result_type in types}
    written = 0
    lines: Iterator[str]
    if view:
        if wanted:
            view = {**view, "result_type": ",".join(sorted(wanted))}
        extension_lines = _extension_lines(client, batch_id, view)
        lines, close = extension_lines, extension_lines.close
    else:
        response = client.messages.batches.results(batch_id).http_response
        # The raw lines under the SDK's decoder: no model is built for a line only passed on,
        # and this works alike in every SDK version (0.x has no streaming `results` wrapper).
        lines = response.iter_lines()
        close = response.close
    try:
        for line in lines:
            if not line:
                continue
            if wanted or as_text:
                result = orjson.loads(line)
                if wanted and result["result"]["type"] not in wanted:
                    continue
                if as_text:
                    line = text_line(result)
            output.write(line.encode() + b"\n")
            written += 1
            if view:
                output.flush()
    finally:
        close()
    output.flush()
    return written
