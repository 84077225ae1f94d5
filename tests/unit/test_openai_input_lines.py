"""An input file's lines, read from its stored pieces wherever the pieces are cut: checked by the
create, or found by the upload's scan, whose line offsets give back the same requests."""

import itertools

import pytest

from batchgate.lifecycle.openai_input import (
    InputScan,
    InputSpan,
    check_input_file,
    lines_of,
    params_array,
)

FILE = b'{"custom_id": "a"}\n\n{"custom_id": "b"}\r\n{"custom_id": "c"}'


@pytest.mark.parametrize("ending", [b"", b"\n"])
@pytest.mark.parametrize("piece_bytes", range(1, len(FILE) + 2))
def test_the_lines_are_the_same_wherever_the_pieces_are_cut(
    piece_bytes: int, ending: bytes
) -> None:
    file = FILE + ending
    pieces = [file[start : start + piece_bytes] for start in range(0, len(file), piece_bytes)]
    assert list(lines_of(pieces)) == FILE.split(b"\n")


def _line(custom_id: str) -> bytes:
    return (
        b'{"custom_id": "' + custom_id.encode() + b'", "method": "POST",'
        b' "url": "/v1/chat/completions", "body": {"model": "m", "messages": []}}'
    )


# Blank lines (empty, spaces, a lone CR) are skipped; a request may start with spaces or end
# with a CR (a file written with CRLF line ends).
REQUESTS = b"\n".join(
    [_line("a"), b"", b"   \t", b"\r", b"  " + _line("b"), _line("c") + b"\r", b" "]
)


@pytest.mark.parametrize("piece_bytes", [1, 7, 64, len(REQUESTS)])
def test_blank_lines_are_skipped_and_requests_kept_wherever_the_pieces_are_cut(
    piece_bytes: int,
) -> None:
    pieces = [
        REQUESTS[start : start + piece_bytes] for start in range(0, len(REQUESTS), piece_bytes)
    ]
    checked = check_input_file(lines_of(pieces), "/v1/chat/completions", 10)
    assert checked.errors == []
    assert checked.custom_ids == ["a", "b", "c"]
    assert [bytes(body) for body in checked.bodies] == [b'{"model": "m", "messages": []}'] * 3


def test_a_line_of_spaces_before_a_bad_request_is_still_an_error() -> None:
    checked = check_input_file(lines_of([b"  {nope\n" + _line("a")]), "/v1/chat/completions", 10)
    assert [(error["code"], error["line"]) for error in checked.errors] == [
        ("invalid_json_line", 1)
    ]


def _scanned(file: bytes, piece_bytes: int, max_lines: int = 10) -> InputScan:
    """The scan of the file as it arrives in pieces."""
    pieces = [file[start : start + piece_bytes] for start in range(0, len(file), piece_bytes)]
    return _scan(pieces, max_lines)


def _scan(pieces: list[bytes], max_lines: int = 10) -> InputScan:
    scan = InputScan(max_lines)
    for piece in pieces:
        scan.add(piece)
    scan.finish()
    return scan


@pytest.mark.parametrize("piece_bytes", [1, 7, 64, len(REQUESTS)])
def test_an_upload_finds_each_requests_line(piece_bytes: int) -> None:
    scan = _scanned(REQUESTS, piece_bytes)
    assert scan.clean and (scan.url, scan.model) == ("/v1/chat/completions", "m")
    assert scan.custom_ids == ["a", "b", "c"]
    assert scan.piece_bytes == piece_bytes
    # Each chunk's params are the bodies of its lines, from one start to the next.
    starts = [*scan.starts, len(REQUESTS)]
    chunks = [
        InputSpan(REQUESTS[start:end]).request_lines() for start, end in itertools.pairwise(starts)
    ]
    assert [params_array(lines) for lines in chunks] == [b'[{"model": "m", "messages": []}]'] * 3
    assert params_array(InputSpan(REQUESTS).request_lines()) == check_bodies(REQUESTS)


def check_bodies(file: bytes) -> bytes:
    checked = check_input_file(lines_of([file]), "/v1/chat/completions", 10)
    return b"[" + b",".join(checked.bodies) + b"]"


@pytest.mark.parametrize(
    "line",
    [
        b"{nope",
        _line("a"),  # its custom_id again
        _line("x").replace(b'"POST"', b'"GET"'),
        _line("x").replace(b"/v1/chat/completions", b"/v1/embeddings"),
        _line("x").replace(b'"model": "m"', b'"model": "other"'),
        _line("x").replace(b'"model": "m", ', b""),
    ],
)
def test_a_file_with_a_line_the_create_would_refuse_is_not_clean(line: bytes) -> None:
    file = REQUESTS + b"\n" + line + b"\n" + _line("z")
    assert not _scanned(file, 7).clean


def test_a_file_of_more_requests_than_a_batch_takes_is_not_clean() -> None:
    assert _scanned(REQUESTS, 7, max_lines=3).clean
    assert not _scanned(REQUESTS, 7, max_lines=2).clean


def test_pieces_of_uneven_sizes_are_not_clean() -> None:
    assert not _scan([REQUESTS[:10], REQUESTS[10:15], REQUESTS[15:]]).clean
