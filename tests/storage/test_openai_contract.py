"""The OpenAI Batch API's part of the store contract, on both stores: files that expire, chunks
that refer to an input file's lines (kept while they do), and OpenAI batches paged newest first
both ways with the details of their Batch object."""

import msgspec
import orjson
import pytest

from batchgate.lifecycle.ids import file_ids_before
from batchgate.lifecycle.openai_input import InputSpan, body_of
from batchgate.storage.base import NewChunk, Store
from batchgate.storage.openai_tables import FileGone, FileRow, InputLines, OpenAIBatchRow
from storage.builders import finish

OWNER = "alice"
NOW = 1_700_000_000.0


def _file(file_id: str, expires_at: float | None) -> FileRow:
    return FileRow(file_id, OWNER, "batch", f"{file_id}.jsonl", 6, NOW, expires_at)


def test_expired_files_are_deleted_with_their_pieces_and_others_kept(store: Store) -> None:
    store.create_file(_file("file-kept", None), [b"abc", b"def"])
    store.create_file(_file("file-later", NOW + 60), [b"abc", b"def"])
    store.create_file(_file("file-gone", NOW - 1), [b"abc", b"def"])

    assert store.delete_expired_files(NOW) == 1
    assert store.get_file(OWNER, "file-gone") is None
    assert b"".join(store.iter_file("file-gone")) == b""
    assert b"".join(store.iter_file("file-kept")) == b"abcdef"
    assert store.delete_expired_files(NOW) == 0
    assert store.delete_expired_files(NOW + 60) == 1
    files, _ = store.list_files(OWNER, None, None, 10, ascending=True)
    assert [file.id for file in files] == ["file-kept"]


def _failed_batch(batch_id: str, owner: str = OWNER) -> OpenAIBatchRow:
    return OpenAIBatchRow(
        batch_id, owner, "/v1/chat/completions", "file-in", "24h", None, NOW,
        failed_at=NOW, errors=[{"code": "empty_file", "line": None}],
        model="gpt-4o-mini", output_expires_seconds=7200,
    )  # fmt: skip


def test_openai_batches_page_newest_first_both_ways_with_their_details(store: Store) -> None:
    ids = ["batch_0001", "batch_0002", "batch_0003", "batch_0004", "batch_0005"]
    for batch_id in ids:
        store.save_failed_openai_batch(_failed_batch(batch_id))
    store.save_failed_openai_batch(_failed_batch("batch_0006", owner="bob"))
    newest = ids[::-1]

    def page(limit: int, after: str | None, before: str | None) -> tuple[list[str], bool]:
        rows, more = store.list_openai_batches(OWNER, after, limit, before)
        return [row.id for row in rows], more

    assert page(2, None, None) == (newest[:2], True)
    assert page(2, newest[1], None) == (newest[2:4], True)
    assert page(2, newest[3], None) == (newest[4:], False)
    assert page(2, None, newest[4]) == (newest[2:4], True)
    assert page(2, None, newest[2]) == (newest[:2], False)
    assert store.get_openai_batch(OWNER, "batch_0001") == _failed_batch("batch_0001")
    assert store.get_openai_batch(OWNER, "batch_0006") is None


# Three requests in pieces of 16 bytes, cut mid-line, a blank line among them.
LINES = [
    b'{"custom_id": "a", "body": {"n": 1}}',
    b"  ",
    b'{"custom_id": "b", "body": {"n": [2, 2]}}',
    b'{"custom_id": "c", "body": {"n": "three"}}',
]
CONTENT = b"\n".join(LINES) + b"\n"
PIECE = 16


def _stored_input_file(store: Store, file_id: str) -> InputLines:
    starts = [0, len(LINES[0]) + len(LINES[1]) + 2, len(CONTENT) - len(LINES[3]) - 1]
    lines = InputLines(PIECE, "/v1/chat/completions", "m", ["a", "b", "c"], [*starts, len(CONTENT)])
    pieces = [CONTENT[start : start + PIECE] for start in range(0, len(CONTENT), PIECE)]
    store.create_file(_file(file_id, None), pieces, lambda: lines)
    return lines


def _referring_batch(store: Store, batch_id: str, file_id: str, lines: InputLines) -> None:
    # Chunks of two requests, then one: [a, b] and [c].
    chunks = [
        NewChunk(2, orjson.dumps(["a", "b"]), b"", file_id, lines.starts[0], lines.starts[2]),
        NewChunk(1, orjson.dumps(["c"]), b"", file_id, lines.starts[2], lines.starts[3]),
    ]
    store.create_batch(batch_id, OWNER, NOW, NOW + 86_400, 3, chunks)


def test_chunks_that_refer_to_an_input_files_lines_read_their_params_there(store: Store) -> None:
    lines = _stored_input_file(store, "file-in")
    assert store.input_lines("file-in") == lines
    assert store.input_lines("file-unknown") is None
    _referring_batch(store, "batch_refers", "file-in", lines)

    expected = [
        (b'["a","b"]', b'[{"n": 1},{"n": [2, 2]}]'),
        (b'["c"]', b'[{"n": "three"}]'),
    ]
    leased = store.lease_chunks("worker", 10, NOW, 30.0)
    assert [(chunk.custom_ids, _requests(chunk.params)) for chunk in leased] == [
        (custom_ids, _requests(params)) for custom_ids, params in expected
    ]
    stored = store.iter_request_chunks("batch_refers")
    assert [(chunk.custom_ids, chunk.params) for chunk in stored] == expected


def _requests(params: bytes | InputSpan) -> list[bytes]:
    """Each request's params in a leased chunk, as a store hands them: a JSON array, or the
    span of an input file that holds its request lines (each one's params its body)."""
    if isinstance(params, bytes):
        return [bytes(raw) for raw in msgspec.json.decode(params, type=list[msgspec.Raw])]
    return [bytes(body_of(line)) for line in params.request_lines()]


def test_an_input_files_bytes_stay_while_a_batch_refers_to_them(store: Store) -> None:
    lines = _stored_input_file(store, "file-in")
    _referring_batch(store, "batch_refers", "file-in", lines)
    store.create_file(_file("file-other", None), [b"x"])

    assert store.delete_file(OWNER, "file-in")
    assert store.delete_file(OWNER, "file-other")
    assert store.get_file(OWNER, "file-in") is None
    assert b"".join(store.iter_file("file-in")) == CONTENT
    assert b"".join(store.iter_file("file-other")) == b""
    leased = store.lease_chunks("worker", 10, NOW, 30.0)
    assert [_requests(chunk.params) for chunk in leased] == [
        [b'{"n": 1}', b'{"n": [2, 2]}'],
        [b'{"n": "three"}'],
    ]
    for chunk in leased:
        assert finish(store, "worker", chunk)

    assert store.archive_older_than(NOW + 1, NOW + 1) == 1
    assert b"".join(store.iter_file("file-in")) == b""
    assert store.input_lines("file-in") is None


def test_a_batch_cannot_refer_to_a_file_deleted_before_it_is_stored(store: Store) -> None:
    lines = _stored_input_file(store, "file-in")
    assert store.delete_file(OWNER, "file-in")
    with pytest.raises(FileGone):
        _referring_batch(store, "batch_refers", "file-in", lines)
    assert store.find_batch("batch_refers") is None
    assert store.lease_chunks("worker", 10, NOW, 30.0) == []


def test_an_upload_is_seen_once_committed_and_an_abandoned_ones_pieces_are_deleted(
    store: Store,
) -> None:
    early, late = file_ids_before(NOW - 10), file_ids_before(NOW)
    abandoned, underway, committed = f"{early}aaa", f"{late}bbb", f"{early}ccc"
    for file_id in (abandoned, underway, committed):
        store.add_file_piece(file_id, 0, b"abc")
        store.add_file_piece(file_id, 1, b"def")
    assert store.get_file(OWNER, committed) is None
    store.commit_file(_file(committed, None), None)
    # Deleted while a batch refers to its lines: no row, but its pieces are not abandoned.
    lines = _stored_input_file(store, "file-in")
    _referring_batch(store, "batch_refers", "file-in", lines)
    assert store.delete_file(OWNER, "file-in")

    assert store.get_file(OWNER, committed) == _file(committed, None)
    assert store.delete_abandoned_uploads(file_ids_before(NOW - 5)) == 1
    assert b"".join(store.iter_file(abandoned)) == b""
    assert b"".join(store.iter_file(underway)) == b"abcdef"
    assert b"".join(store.iter_file(committed)) == b"abcdef"
    assert b"".join(store.iter_file("file-in")) == CONTENT
    assert store.delete_abandoned_uploads(file_ids_before(NOW - 5)) == 0

    store.discard_file_pieces(underway)
    store.discard_file_pieces(committed)  # a file's pieces are not an upload's to discard
    assert b"".join(store.iter_file(underway)) == b""
    assert b"".join(store.iter_file(committed)) == b"abcdef"
