"""Reading the requests of a batch from a file, checked line by line before anything is sent
(lifecycle/request_lines.py)."""

from pathlib import Path

from batchgate.cli.client.failures import CommandFailure
from batchgate.lifecycle.request_lines import (
    BatchRequest,
    PromptSettings,
    RejectedLine,
    RequestFile,
    problem_lines,
    read_request_lines,
)

__all__ = [
    "BatchRequest",
    "PromptSettings",
    "RejectedLine",
    "load_requests",
    "problem_lines",
    "read_request_file",
]


def read_request_file(path: Path, prompts: PromptSettings | None = None) -> RequestFile:
    """The requests of the file and its lines that cannot be requests (read_request_lines)."""
    with path.open("rb") as lines:
        return read_request_lines(lines, prompts)


def load_requests(path: Path, prompts: PromptSettings | None = None) -> list[BatchRequest]:
    """Every request of the file; raises CommandFailure listing each bad line with its number."""
    read = read_request_file(path, prompts)
    if read.rejected:
        raise CommandFailure(
            f"{len(read.rejected)} invalid line(s) in {path}; nothing was sent:\n"
            + problem_lines(read.rejected)
        )
    if not read.requests:
        raise CommandFailure(f"{path} holds no requests")
    return read.requests
