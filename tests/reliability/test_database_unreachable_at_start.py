"""A database that cannot be reached at start: one clear line naming it, a non-zero exit, fast."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import free_port
from reliability.tmpfs import mounted_tmpfs

# The import of batchgate itself takes a few seconds on a busy machine; a connect that waited
# for the operating system's TCP timeout would take minutes.
STARTS_WITHIN_SECONDS = 30


def start(command: str, database_url: str) -> tuple[subprocess.CompletedProcess[str], float]:
    arguments = ["serve", "--port", str(free_port())] if command == "serve" else ["worker"]
    started = time.monotonic()
    finished = subprocess.run(
        [sys.executable, "-m", "batchgate", *arguments],
        capture_output=True,
        text=True,
        timeout=STARTS_WITHIN_SECONDS,
        env={**os.environ, "BATCHGATE_DATABASE_URL": database_url},
    )
    return finished, time.monotonic() - started


def closed_port() -> int:
    return free_port()  # bound and closed again: connections to it are refused


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_an_unreachable_postgresql_stops_the_start_with_one_line(command: str) -> None:
    url = f"postgresql://batchgate:s3cret-password@127.0.0.1:{closed_port()}/batches"
    finished, seconds = start(command, url)
    assert finished.returncode != 0
    last_line = finished.stderr.strip().splitlines()[-1]
    assert last_line.startswith("Cannot start: the PostgreSQL database 'batches' on 127.0.0.1:")
    assert "Connection refused" in last_line
    assert "s3cret" not in finished.stderr + finished.stdout
    assert "Traceback" not in finished.stderr
    assert seconds < STARTS_WITHIN_SECONDS


@pytest.fixture
def read_only_directory(tmp_path: Path) -> Iterator[Path]:
    """A read-only filesystem: root may write anywhere else, whatever the permissions say."""
    with mounted_tmpfs(tmp_path / "read-only", "ro,size=1m") as directory:
        yield directory


@pytest.mark.parametrize("where", ["missing directory", "directory that is a file", "read-only"])
def test_an_sqlite_file_that_cannot_be_created_stops_the_start_with_one_line(
    where: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if where == "missing directory":
        path = tmp_path / "no" / "such" / "directory" / "batchgate.db"
    elif where == "directory that is a file":
        (tmp_path / "a-file").write_text("not a directory")
        path = tmp_path / "a-file" / "batchgate.db"
    else:
        path = request.getfixturevalue("read_only_directory") / "batchgate.db"
    finished, _ = start("serve", f"sqlite:///{path}")
    assert finished.returncode != 0
    last_line = finished.stderr.strip().splitlines()[-1]
    assert last_line == (
        f"Cannot start: the SQLite database {path} is unavailable: unable to open database file"
    )
    assert "Traceback" not in finished.stderr
