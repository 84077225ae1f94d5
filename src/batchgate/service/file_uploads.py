"""An uploaded file stored as it arrives (`POST /v1/files`), never held or spooled whole.

The bytes are cut into pieces of PIECE_BYTES; each is checked (InputScan) and stored in a commit
of its own on a worker thread while the next one is received, at most one piece waiting beside
the one being stored. The file's row is committed last, synced, and its pieces with it: until
then nothing sees the file, and an upload that fails midway deletes its pieces (`discard`), or,
if the server stopped meanwhile, the engine's housekeeping does later
(Store.delete_abandoned_uploads, which finds them by their time-sorted file ids).
"""

import asyncio
import time
from collections import deque

import anyio
import anyio.to_thread

from batchgate.lifecycle.ids import new_file_id
from batchgate.lifecycle.openai_input import InputScan
from batchgate.storage.base import Store
from batchgate.storage.openai_tables import FileRow, InputLines

# The pieces a file is stored in.
PIECE_BYTES = 4 * 1024 * 1024
# The pieces being checked and stored at once, at most: one waiting while the one before it is
# stored, so that neither the receive nor the store waits on the other's hiccups.
PIECES_IN_FLIGHT = 2


def found(scan: InputScan, size: int) -> InputLines | None:
    """What an upload of `size` bytes keeps of its lines once scanned: for a clean file only."""
    if not scan.clean or scan.url is None or scan.model is None:
        return None
    return InputLines(scan.piece_bytes, scan.url, scan.model, scan.custom_ids, [*scan.starts, size])


class FileUpload:
    """One file's bytes as they are received: `write` them in order (any sizes), `await
    store_written()` now and then to hand whole pieces on, then `finish` (or `discard`)."""

    def __init__(self, store: Store, max_lines: int) -> None:
        self.id = new_file_id()
        self.size = 0
        self._store = store
        self._scan = InputScan(max_lines)
        # The bytes of the piece being filled, and the whole pieces not yet handed on.
        self._filling: list[bytes] = []
        self._filled = 0
        self._whole: list[list[bytes]] = []
        self._stored = 0
        self._in_flight: deque[asyncio.Task[None]] = deque()

    def write(self, data: bytes) -> None:
        self.size += len(data)
        while len(data) >= (room := PIECE_BYTES - self._filled):
            self._filling.append(data[:room])
            self._whole.append(self._filling)
            data, self._filling, self._filled = data[room:], [], 0
        if data:
            self._filling.append(data)
            self._filled += len(data)

    async def store_written(self) -> None:
        """Hands each whole piece on to be checked and stored, PIECES_IN_FLIGHT at most."""
        while self._whole:
            while len(self._in_flight) >= PIECES_IN_FLIGHT:
                await self._stored_first()
            parts = self._whole.pop(0)
            number, self._stored = self._stored, self._stored + 1
            before = self._in_flight[-1] if self._in_flight else None
            self._in_flight.append(
                asyncio.create_task(self._check_and_store(number, parts, before))
            )

    async def _check_and_store(
        self, number: int, parts: list[bytes], before: asyncio.Task[None] | None
    ) -> None:
        if before is not None:
            await asyncio.wait([before])
            if before.cancelled() or before.exception() is not None:
                return  # the upload has failed already
        await anyio.to_thread.run_sync(self._join_check_and_store, number, parts)

    def _join_check_and_store(self, number: int, parts: list[bytes]) -> None:
        # One worker thread a piece, in turn: the receive, on the event loop's thread, is what
        # an upload waits on, and each thread more that runs beside it takes CPU from it.
        piece = b"".join(parts)
        parts.clear()  # not held twice while it is stored
        self._scan.add(piece)
        self._store.add_file_piece(self.id, number, piece)

    async def finish(
        self, owner: str, filename: str, purpose: str, expires_seconds: float | None
    ) -> FileRow:
        """Stores the rest and commits the file; it expires `expires_seconds` after now."""
        if self._filling:
            self._whole.append(self._filling)
            self._filling, self._filled = [], 0
        await self.store_written()
        while self._in_flight:
            await self._stored_first()
        self._scan.finish()
        now = time.time()
        expires_at = None if expires_seconds is None else now + expires_seconds
        file = FileRow(self.id, owner, purpose, filename, self.size, now, expires_at)
        await anyio.to_thread.run_sync(self._store.commit_file, file, found(self._scan, self.size))
        return file

    async def discard(self) -> None:
        """Deletes what was stored of an upload that will not be finished (even when cancelled)."""
        with anyio.CancelScope(shield=True):
            if self._in_flight:
                # Some may have failed: the pieces stored are deleted all the same.
                await asyncio.wait(self._in_flight)
                for task in self._in_flight:
                    if not task.cancelled():
                        task.exception()  # seen: it is the upload's failure, or one of it
            if self._stored:
                await anyio.to_thread.run_sync(self._store.discard_file_pieces, self.id)

    async def _stored_first(self) -> None:
        # Shielded: a timeout or a lost client ends the upload, not a commit underway; the
        # upload's `discard` waits for it.
        await asyncio.shield(self._in_flight[0])
        self._in_flight.popleft()
