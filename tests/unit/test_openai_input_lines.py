"""An input file's lines, read from its stored pieces wherever the pieces are cut."""

import pytest

from batchgate.service.openai_batches import check_input_file, lines_of

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
