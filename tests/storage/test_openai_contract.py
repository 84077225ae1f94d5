"""The OpenAI Batch API's part of the store contract, on both stores: files that expire, and
OpenAI batches paged newest first both ways with the details of their Batch object."""

from batchgate.storage.base import Store
from batchgate.storage.openai_tables import FileRow, OpenAIBatchRow

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
