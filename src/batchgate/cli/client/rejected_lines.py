"""`submit --skip-invalid`: the lines of a request file that cannot be requests are left out and
written beside it, as JSONL, each with its line number and the reason, to fix and submit again.
"""

from pathlib import Path

import orjson

from batchgate.cli.client.consoles import tell
from batchgate.cli.client.failures import CommandFailure
from batchgate.cli.client.request_file import (
    BatchRequest,
    PromptSettings,
    RejectedLine,
    problem_lines,
    read_request_file,
)


def rejected_lines_path(source: Path) -> Path:
    """requests.jsonl -> requests.rejected.jsonl, beside it."""
    return source.with_name(f"{source.stem}.rejected.jsonl")


def _write(path: Path, rejected: list[RejectedLine]) -> None:
    """One {"line", "reason", "text"} object a line; text is the line as it was in the file
    (bytes that are not UTF-8 become U+FFFD)."""
    try:
        with path.open("wb") as file:
            for line in rejected:
                record = {
                    "line": line.number,
                    "reason": line.reason,
                    "text": line.text.decode(errors="replace"),
                }
                file.write(orjson.dumps(record) + b"\n")
    except OSError as error:
        raise CommandFailure(
            f"cannot write the invalid lines to {path} ({error.strerror}); nothing was sent"
        ) from None


def load_valid_requests(
    path: Path, prompts: PromptSettings | None = None
) -> tuple[list[BatchRequest], int]:
    """The valid requests of the file, and how many lines were left out.

    The lines left out, if any, are written to rejected_lines_path(path), which stderr names.
    """
    read = read_request_file(path, prompts)
    if read.rejected:
        rejected_path = rejected_lines_path(path)
        _write(rejected_path, read.rejected)
        tell(
            f"Skipping {len(read.rejected)} invalid line(s) of {path}, written with their line"
            f" numbers and reasons to {rejected_path}:\n{problem_lines(read.rejected)}"
        )
    if not read.requests:
        raise CommandFailure(f"{path} holds no valid requests; nothing was sent")
    return read.requests, len(read.rejected)
