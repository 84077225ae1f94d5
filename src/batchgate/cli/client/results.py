"""Streaming a batch's results to a file or stdout: as the API sends them, or as text lines."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Collection, Generator, Iterator
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


TEXT_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


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
    return f"{result['custom_id']}\t{_summary(result['result']).translate(TEXT_ESCAPES)}"


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


def _sdk(client: object) -> Any:
    """The SDK module (anthropic or openai) a client belongs to: both have the same `Stream`
    and `APIConnectionError`."""
    return sys.modules[type(client).__module__.split(".")[0]]


def _extension_response(client: Any, path: str, view: dict[str, str]) -> Any:
    """The SDK's HTTP response of a results endpoint (`path`, under the client's base URL) with
    batchgate's `view` parameters (follow, merged), unread: the SDK's own `results` wants an
    ended batch's results_url."""
    stream_cls = _sdk(client).Stream
    # With stream=True the SDK hands the response to the stream class unparsed; only its raw
    # lines are read, never the stream's own decoding.
    stream = client.get(
        path,
        cast_to=object,
        stream=True,
        stream_cls=stream_cls[object],
        options={"params": view},
    )
    return stream.response


def extension_lines(client: Any, path: str, view: dict[str, str]) -> Generator[str]:
    """The lines of the results `view` asks for, from the results endpoint at `path`, through
    either SDK's `client`. A followed response that breaks off is asked for again from the same
    place, skipping the whole lines already had (docs/api.md)."""
    connection_error = _sdk(client).APIConnectionError
    received = 0
    failures = 0
    while True:
        params = {**view, "skip_lines": str(received)} if received else view
        try:
            response = _extension_response(client, path, params)
        except connection_error:
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


def write_lines(
    lines: Iterator[str],
    output: BinaryIO,
    keep: Callable[[dict[str, Any]], bool] | None = None,
    as_text: Callable[[dict[str, Any]], str] | None = None,
    flush_each: bool = False,
) -> int:
    """Writes the result lines `keep` keeps (every line without it), each as it came or as
    `as_text` makes it; returns how many were written."""
    written = 0
    for line in lines:
        if not line:
            continue
        if keep is not None or as_text is not None:
            result = orjson.loads(line)
            if keep is not None and not keep(result):
                continue
            if as_text is not None:
                line = as_text(result)
        output.write(line.encode() + b"\n")
        written += 1
        if flush_each:
            output.flush()
    output.flush()
    return written


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
    lines: Iterator[str]
    if view:
        if wanted:
            view = {**view, "result_type": ",".join(sorted(wanted))}
        path = f"/v1/messages/batches/{batch_id}/results"
        extension = extension_lines(client, path, view)
        lines, close = extension, extension.close
    else:
        response = client.messages.batches.results(batch_id).http_response
        # The raw lines under the SDK's decoder: no model is built for a line only passed on,
        # and this works alike in every SDK version (0.x has no streaming `results` wrapper).
        lines = response.iter_lines()
        close = response.close
    try:
        return write_lines(
            lines,
            output,
            keep=(lambda result: result["result"]["type"] in wanted) if wanted else None,
            as_text=text_line if as_text else None,
            flush_each=bool(view),
        )
    finally:
        close()
