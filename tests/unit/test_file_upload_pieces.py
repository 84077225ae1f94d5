"""An upload hands its pieces to the store in order, each checked as it goes, and the file's row
last; a piece that fails to store fails the upload, no later piece is stored and those stored are
discarded."""

import asyncio

import pytest

from batchgate.service import file_uploads
from batchgate.service.file_uploads import FileUpload
from batchgate.storage.openai_tables import FileRow, InputLines

PIECE = 64


class RecordingStore:
    def __init__(self, failing_piece: int | None = None) -> None:
        self.pieces: list[tuple[int, bytes]] = []
        self.files: list[tuple[FileRow, InputLines | None]] = []
        self.discarded: list[str] = []
        self._failing_piece = failing_piece

    def add_file_piece(self, file_id: str, number: int, data: bytes) -> None:
        if number == self._failing_piece:
            raise OSError("disk full")
        self.pieces.append((number, data))

    def commit_file(self, file: FileRow, lines: InputLines | None) -> None:
        self.files.append((file, lines))

    def discard_file_pieces(self, file_id: str) -> None:
        self.discarded.append(file_id)


def _lines(count: int) -> bytes:
    return b"".join(
        b'{"custom_id": "r%03d", "method": "POST", "url": "/v1/chat/completions",'
        b' "body": {"model": "m"}}\n' % number
        for number in range(count)
    )


async def _receive(upload: FileUpload, content: bytes, write_bytes: int) -> FileRow:
    for start in range(0, len(content), write_bytes):
        upload.write(content[start : start + write_bytes])
        await upload.store_written()
    return await upload.finish("owner", "in.jsonl", "batch", None)


@pytest.fixture(autouse=True)
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_uploads, "PIECE_BYTES", PIECE)


def test_pieces_are_stored_in_order_and_the_file_row_last() -> None:
    content = _lines(40)
    store = RecordingStore()

    file = asyncio.run(_receive(FileUpload(store, max_lines=1000), content, 100))
    numbers = [number for number, _ in store.pieces]
    assert numbers == list(range(-(-len(content) // PIECE)))
    assert b"".join(data for _, data in store.pieces) == content
    [(row, lines)] = store.files
    assert row is file and row.bytes == len(content)
    assert lines is not None and len(lines.custom_ids) == 40


def test_a_piece_that_fails_to_store_fails_the_upload_and_no_later_piece_is_stored() -> None:
    content = _lines(40)
    store = RecordingStore(failing_piece=3)

    async def run() -> None:
        upload = FileUpload(store, max_lines=1000)
        try:
            await _receive(upload, content, 100)
        finally:
            await upload.discard()

    with pytest.raises(OSError, match="disk full"):
        asyncio.run(run())
    assert [number for number, _ in store.pieces] == [0, 1, 2]
    assert store.files == []
    assert len(store.discarded) == 1
