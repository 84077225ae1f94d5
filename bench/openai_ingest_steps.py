"""Where an OpenAI upload + create spends its time: each step alone, in-process.

The same functions the server runs, on a fresh SQLite store, without HTTP: the upload's multipart
parse (into its pieces) and storing the pieces while checking each line, then the create's read
of what the upload found of the lines, its chunks (which refer to the lines) and their insert; last,
not part of the create, what the engine's reads of those chunks cost. Each step's CPU time
(process_time, which a shared machine's load disturbs less than the wall clock) is the minimum over
the rounds; its wall time is that round's. Last, the upload as the server runs it, the pieces
checked and stored on a worker thread while the parse goes on. The floor (bench/openai_batches.py:
decode the lines, insert them as chunks) is measured the same way, for scale.
"""

import argparse
import asyncio
import gc
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from core import PROMPT

from batchgate.api.openai_files import UploadForm
from batchgate.config.settings import Settings
from batchgate.service.file_uploads import FileUpload
from batchgate.service.openai_batches import chunks_in_file
from batchgate.storage.openai_tables import FileRow
from batchgate.storage.sqlite import SQLiteStore
from openai_batches import BOUNDARY, floor_seconds, make_file, multipart

T = TypeVar("T")
ENDPOINT = "/v1/chat/completions"
# The body's chunks as uvicorn hands them to the app.
CHUNK_BYTES = 64 * 1024


def received(body: bytes, store: SQLiteStore, settings: Settings) -> UploadForm:
    """The body parsed as the server receives it, in chunks as uvicorn hands them on; its file's
    pieces are left to be stored."""
    form = UploadForm(BOUNDARY.encode(), lambda: FileUpload(store, settings.openai_max_batch_lines))
    for start in range(0, len(body), CHUNK_BYTES):
        form.parser.write(body[start : start + CHUNK_BYTES])
    form.parser.finalize()
    return form


async def served(body: bytes, store: SQLiteStore, settings: Settings) -> FileRow:
    """The upload as the server runs it: each piece checked and stored while the next arrives."""
    form = UploadForm(BOUNDARY.encode(), lambda: FileUpload(store, settings.openai_max_batch_lines))
    for start in range(0, len(body), CHUNK_BYTES):
        form.parser.write(body[start : start + CHUNK_BYTES])
        assert form.upload is not None
        await form.upload.store_written()
        # What a socket's next chunk waits for: the loop lets the worker thread run meanwhile.
        await asyncio.sleep(0)
    form.parser.finalize()
    assert form.upload is not None
    return await form.upload.finish("owner", "in.jsonl", "batch", None)


def one_round(file: bytes, store_path: Path, times: dict[str, list[tuple[float, float]]]) -> None:
    def step(name: str, work: Callable[[], T]) -> T:
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        times.setdefault(name, []).append((time.process_time() - cpu, time.perf_counter() - wall))
        return result

    body = multipart(file)
    store = SQLiteStore(str(store_path))
    settings = Settings()
    try:
        form = step("upload: parse", lambda: received(body, store, settings))
        upload = form.upload
        assert upload is not None
        row = step(
            "upload: store + check",
            lambda: asyncio.run(upload.finish("owner", "in.jsonl", "batch", None)),
        )
        lines = step("create: read its lines", lambda: store.input_lines(row.id))
        assert lines is not None and lines.url == ENDPOINT
        chunks = step(
            "create: the chunks",
            lambda: list(chunks_in_file(row, lines, settings.chunk_size)),
        )
        total = len(lines.custom_ids)
        step(
            "create: insert chunks",
            lambda: store.create_batch("batch_steps", "owner", 0.0, 86_400.0, total, chunks),
        )
        # Not the create's: what its engine then reads, leasing every chunk (its requests'
        # lines, read from the file).
        step(
            "(engine: lease chunks)",
            lambda: store.lease_chunks("steps", len(chunks), time.time(), 600.0),
        )
        # Not a step: parse, check and store overlapped, as the server runs them.
        step("(upload as served)", lambda: asyncio.run(served(body, store, settings)))
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for label, prompt in (("small", PROMPT), ("large", PROMPT * 8)):
        file = make_file(args.requests, prompt)
        times: dict[str, list[tuple[float, float]]] = {}
        with tempfile.TemporaryDirectory() as scratch:
            floors = []
            for attempt in range(2):
                cpu = time.process_time()
                wall = floor_seconds(file, Path(scratch), attempt)
                floors.append((time.process_time() - cpu, wall))
            floor_cpu, floor_wall = min(floors)
            for number in range(args.rounds):
                one_round(file, Path(scratch) / f"steps-{number}.db", times)
        print(f"{args.requests:,} {label} lines ({len(file) / 1e6:.0f} MB)")
        print(f"  {'step':<24}{'cpu_s':>8}{'wall_s':>8}")
        for name, samples in times.items():
            cpu, wall = min(samples)
            print(f"  {name:<24}{cpu:>8.3f}{wall:>8.3f}")
        ingest = [samples for name, samples in times.items() if not name.startswith("(")]
        print(f"  {'total':<24}{sum(min(s)[0] for s in ingest):>8.3f}")
        print(f"  {'floor':<24}{floor_cpu:>8.3f}{floor_wall:>8.3f}")


if __name__ == "__main__":
    main()
