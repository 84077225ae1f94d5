"""A full disk under SQLite: a create that does not fit is refused whole, processing pauses, and
both resume once space is freed.

The database lives on a small tmpfs of its own, filled for real by a filler file: the
filesystem, not SQLite's page limit, runs out, as a full volume would. The server's log is
kept elsewhere, so that logging never competes for the space.
"""

import contextlib
import errno
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest

from conftest import Server, simple_request, wait_until_ended
from reliability.tmpfs import mounted_tmpfs

# Room, once the filler is gone, for the WAL to grow by several seconds of commits (32 KiB
# pages) before a checkpoint lets it start over.
DISK_SIZE = "64m"
REQUESTS = 1000  # about 12 s of work: still running when the disk fills
SETTINGS = {
    "simulator_latency_ms": "50",
    "max_concurrency": "4",
    "chunk_size": "50",
    "flush_seconds": "0.05",
}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with mounted_tmpfs(tmp_path / "disk", f"size={DISK_SIZE}") as mount_point:
        yield mount_point


def fill(directory: Path) -> Path:
    """Writes a file until the filesystem has no space left."""
    filler = directory / "filler"
    block = b"\0" * 65536
    with filler.open("wb", buffering=0) as sink:
        while True:
            try:
                sink.write(block)
            except OSError as error:
                assert error.errno == errno.ENOSPC
                break
    with filler.open("ab", buffering=0) as sink:
        # The last partial block, so that not even a page is left.
        for _ in range(4096):
            try:
                sink.write(b"\0" * 512)
            except OSError:
                break
    return filler


def counts_progress(client: anthropic.Anthropic, batch_id: str) -> int:
    return client.messages.batches.retrieve(batch_id).request_counts.succeeded


def wait_for_log(server: Server, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.log.read_text():
        assert time.monotonic() < deadline, f"never logged {text!r}"
        time.sleep(0.05)


def requests(prefix: str, count: int, size: int = 16) -> list[dict[str, object]]:
    return [simple_request(f"{prefix}-{i}", f"{prefix} {i} " + "x" * size) for i in range(count)]


def test_a_full_disk_refuses_the_create_whole_and_processing_resumes_when_space_returns(
    small_disk: Path, tmp_path: Path, long_run: bool
) -> None:
    server = Server(tmp_path, **SETTINGS)
    server.database = small_disk / "batchgate.db"
    server.env["BATCHGATE_DATABASE_URL"] = f"sqlite:///{server.database}"
    server.start()
    try:
        client = server.client()
        running = client.messages.batches.create(requests=requests("running", REQUESTS))  # type: ignore[arg-type]
        deadline = time.monotonic() + 30
        while counts_progress(client, running.id) == 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)

        accepted = []
        for cycle in range(3 if long_run else 1):
            filler = fill(small_disk)
            # Bigger than anything the WAL could reuse: it has to grow, and cannot.
            with pytest.raises(anthropic.APIStatusError) as refused:
                client.messages.batches.create(requests=requests(f"big{cycle}", 2000, 2000))  # type: ignore[arg-type]
            assert refused.value.status_code == 507
            assert "out of disk space" in refused.value.message
            assert int(refused.value.response.headers["retry-after"]) > 0
            listed = [batch.id for batch in client.messages.batches.list(limit=100)]
            assert listed == [*reversed(accepted), running.id], "no half-written batch"

            if cycle == 0:
                wait_for_log(server, "the engine waits for it and retries")
                paused = counts_progress(client, running.id)
                time.sleep(1.0)
                assert counts_progress(client, running.id) == paused < REQUESTS

            filler.unlink()
            again = client.messages.batches.create(requests=requests(f"again{cycle}", 50))  # type: ignore[arg-type]
            accepted.append(again.id)

        wait_for_log(server, "the engine resumes")
        for batch_id, prefix, count in [
            (running.id, "running", REQUESTS),
            *((batch_id, f"again{cycle}", 50) for cycle, batch_id in enumerate(accepted)),
        ]:
            ended = wait_until_ended(client, batch_id, timeout=120)
            assert ended.request_counts.succeeded == count
            seen = Counter(result.custom_id for result in client.messages.batches.results(batch_id))
            assert set(seen) == {f"{prefix}-{i}" for i in range(count)}
            assert set(seen.values()) == {1}
    finally:
        server.stop()

    with contextlib.closing(sqlite3.connect(server.database)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        stored = {row[0] for row in db.execute("SELECT DISTINCT batch_id FROM chunk_requests")}
        assert stored == {running.id, *accepted}
    assert "Traceback" not in server.log.read_text()
