"""An input file's lines, read from its stored pieces wherever the pieces are cut."""

import pytest

from batchgate.service.openai_batches import lines_of

FILE = b'{"custom_id": "a"}\n\n{"custom_id": "b"}\r\n{"custom_id": "c"}'


@pytest.mark.parametrize("ending", [b"", b"\n"])
@pytest.mark.parametrize("piece_bytes", range(1, len(FILE) + 2))
def test_the_lines_are_the_same_wherever_the_pieces_are_cut(
    piece_bytes: int, ending: bytes
) -> None:
    file = FILE + ending
    pieces = [file[start : start + piece_bytes] for start in range(0, len(file), piece_bytes)]
    assert list(lines_of(pieces)) == FILE.split(b"\n")
