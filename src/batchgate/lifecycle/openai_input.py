"""The lines of an OpenAI batch's input file: each checked as OpenAI checks them (pure, no I/O).

A file is checked twice over, both times with the same rules. Its upload scans each line as the
pieces arrive (InputScan): a file whose every line is a request for one url and one model keeps
what a create needs (its custom_ids and where each line starts), so that the create reads
none of it and its chunks refer to the file's lines instead of copying them (storage/base.py).
Any other file is read back and checked by the create (check_input_file), which names each bad
line in the batch's errors.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec

# The errors a failed batch lists, at most: enough to fix a file, not a second copy of it.
MAX_LINE_ERRORS = 100


class _InputLine(msgspec.Struct):
    custom_id: str
    method: str
    url: str
    body: msgspec.Raw


class _Model(msgspec.Struct):
    model: str


_LINE = msgspec.json.Decoder(_InputLine)
_MODEL = msgspec.json.Decoder(_Model)


class _ScannedLine(msgspec.Struct):
    """A line as the upload's scan reads it: in one pass, the body only for its model."""

    custom_id: str
    method: str
    url: str
    body: _Model


_SCANNED = msgspec.json.Decoder(_ScannedLine)
# A line of an input file: a view into the stored piece that holds it, or bytes.
Line = bytes | memoryview
# What bytes.strip() strips.
_WHITESPACE = frozenset(b" \t\n\r\x0b\x0c")


@dataclass
class CheckedFile:
    """An input file's requests, or the errors of its lines."""

    custom_ids: list[str] = field(default_factory=list)
    bodies: list[msgspec.Raw] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    # The model every request names (the first valid line's, where lines disagree).
    model: str | None = None

    def error(self, code: str, message: str, line: int | None, param: str | None = None) -> None:
        if len(self.errors) < MAX_LINE_ERRORS:
            self.errors.append({"code": code, "message": message, "param": param, "line": line})


def _field_at_fault(error: msgspec.DecodeError, within: str | None = None) -> str | None:
    """The field a line's decode error names (`custom_id`, `body.model`, ...), as a dotted path
    under `within`; None where the line as a whole is at fault (not JSON, not an object)."""
    text = str(error)
    field = None
    if text.startswith("Object missing required field `"):
        field = text.split("`")[1]
    elif " - at `$." in text:
        field = text.rsplit(" - at `$.", 1)[1].rstrip("`")
    if field is None:
        return within
    return field if within is None else f"{within}.{field}"


def lines_of(pieces: Iterable[bytes]) -> Iterator[Line]:
    """The lines of a file read in pieces, without their line ends: views into the pieces, never
    copies, but for a line that spans pieces (joined once)."""
    spanning: list[Line] = []
    for piece in pieces:
        start = 0
        if spanning:
            end = piece.find(b"\n")
            if end < 0:
                spanning.append(piece)
                continue
            yield b"".join([*spanning, piece[:end]])
            spanning, start = [], end + 1
        view = memoryview(piece)
        while (end := piece.find(b"\n", start)) >= 0:
            yield view[start:end]
            start = end + 1
        if start < len(piece):
            spanning.append(view[start:])
    if spanning:
        yield b"".join(spanning)


def _is_blank(line: Line) -> bool:
    # A view has no strip(): only a line that starts with whitespace is copied to be checked.
    return not line or (line[0] in _WHITESPACE and not bytes(line).strip())


def check_input_file(lines: Iterable[Line], endpoint: str, max_lines: int) -> CheckedFile:
    """Each line checked as OpenAI checks a batch's input file, numbered from 1."""
    checked = CheckedFile()
    seen: set[str] = set()
    number = 0
    for number, line in enumerate(lines, 1):
        if _is_blank(line):
            continue
        if len(checked.custom_ids) >= max_lines:
            checked.error("too_many_tasks", f"The file has more than {max_lines} requests.", number)
            break
        try:
            request = _LINE.decode(line)
        except msgspec.DecodeError as error:
            checked.error(
                "invalid_json_line",
                f"This line is not a valid request: {error}",
                number,
                _field_at_fault(error),
            )
            continue
        if request.custom_id in seen:
            checked.error(
                "duplicate_custom_id",
                f"The custom_id {request.custom_id!r} is used by an earlier line.",
                number,
                "custom_id",
            )
            continue
        seen.add(request.custom_id)
        if request.method != "POST":
            checked.error("invalid_method", "The method must be POST.", number, "method")
            continue
        if request.url != endpoint:
            checked.error(
                "mismatched_url",
                f"The url must be the batch's endpoint, {endpoint}.",
                number,
                "url",
            )
            continue
        try:
            line_model = _MODEL.decode(request.body).model
        except msgspec.DecodeError as error:
            checked.error(
                "invalid_body",
                f"The body is not a request with a model: {error}",
                number,
                _field_at_fault(error, "body"),
            )
            continue
        if checked.model is None:
            checked.model = line_model
        elif line_model != checked.model:
            checked.error(
                "mismatched_model",
                f"Every line must name the same model: {line_model!r} after {checked.model!r}.",
                number,
                "body.model",
            )
            continue
        checked.custom_ids.append(request.custom_id)
        checked.bodies.append(request.body)
    if not checked.custom_ids and not checked.errors:
        checked.error("empty_file", "The input file has no requests.", None)
    return checked


class InputScan:
    """An upload's check of its lines, made as its pieces arrive: `add` each piece in turn, then
    `finish`. After them, `clean` says whether every line was a request (blank lines aside) with
    a custom_id of its own, one url and one model, and every piece but the last `piece_bytes`
    long (so that a byte's piece is found by division). A file of more than `max_lines` requests
    is not clean: what it keeps of each line stays bounded, and the create names the line that is
    one too many."""

    def __init__(self, max_lines: int) -> None:
        self.max_lines = max_lines
        self.clean = True
        self.piece_bytes = 0
        self.url: str | None = None
        self.model: str | None = None
        self.custom_ids: list[str] = []
        # The byte offset of each request's line.
        self.starts: list[int] = []
        self._seen: set[str] = set()
        # Where the next line starts, the start of it that earlier pieces hold, and the length of
        # the piece before (which had to be piece_bytes long, now that another follows).
        self._offset = 0
        self._spanning: list[Line] = []
        self._previous = 0

    def add(self, piece: bytes) -> None:
        """Checks the lines that end in `piece`, the file's next piece."""
        if self._previous and self._previous != self.piece_bytes:
            self.clean = False
        self.piece_bytes = self.piece_bytes or len(piece)
        self._previous = len(piece)
        # A file found not clean is not scanned further.
        if not self.clean:
            self._spanning = []
            return
        start = 0
        if self._spanning:
            end = piece.find(b"\n")
            if end < 0:
                self._spanning.append(piece)
                return
            self._line(b"".join([*self._spanning, piece[:end]]))
            self._spanning, start = [], end + 1
        view = memoryview(piece)
        while self.clean and (end := piece.find(b"\n", start)) >= 0:
            self._line(view[start:end])
            start = end + 1
        if self.clean and start < len(piece):
            self._spanning.append(view[start:])

    def finish(self) -> None:
        """Checks the last line, the one no line feed ends."""
        if self.clean and self._spanning:
            self._line(b"".join(self._spanning))
        self._spanning = []

    def _line(self, line: Line) -> None:
        if not self._take(line, self._offset):
            self.clean = False
        # Each line but the last ends in one line feed, not part of the line.
        self._offset += len(line) + 1

    def _take(self, line: Line, offset: int) -> bool:
        """Whether the line is blank or a request like the lines before it (and keeps it)."""
        if _is_blank(line):
            return True
        if len(self.custom_ids) == self.max_lines:
            return False
        try:
            request = _SCANNED.decode(line)
        except msgspec.DecodeError:
            return False
        if request.method != "POST" or request.custom_id in self._seen:
            return False
        model = request.body.model
        if self.url is None:
            self.url, self.model = request.url, model
        elif request.url != self.url or model != self.model:
            return False
        self._seen.add(request.custom_id)
        self.custom_ids.append(request.custom_id)
        self.starts.append(offset)
        return True


class _Body(msgspec.Struct):
    body: msgspec.Raw


_BODY = msgspec.json.Decoder(_Body)


@dataclass(frozen=True, slots=True)
class InputSpan:
    """The bytes of an input file that a chunk refers to: whole lines, which the upload checked.
    The chunk's requests are those that are not blank, each one's params its line's body."""

    data: bytes

    def request_lines(self) -> list[Line]:
        return [line for line in lines_of([self.data]) if not _is_blank(line)]


def body_of(line: Line) -> msgspec.Raw:
    """The body of a request line the upload checked."""
    return _BODY.decode(line).body


def params_array(lines: Iterable[Line]) -> bytes:
    """The bodies of request lines as the JSON array a chunk's params are stored as."""
    return b"[" + b",".join(map(body_of, lines)) + b"]"
