"""Where an OpenAI upload + create spends its time: each step alone, in-process.

The same functions the server runs, on a fresh SQLite store, without HTTP: the upload's multipart
parse (to its spooled file) and storing the pieces while checking each line, then the create's read
of what the upload found of the lines, its chunks (which refer to the lines) and their insert; last,
not part of the create, what the engine's reads of those chunks cost. Each step's CPU time
(process_time, which a shared machine's load disturbs less than the wall clock) is the minimum over
the rounds; its wall time is that round's. The floor (bench/openai_batches.py: decode the lines,
insert them as chunks) is measured the same way, for scale.
"""

import argparse
import gc
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TypeVar

from core import PROMPT
from python_multipart.multipart import File, FormParser

from batchgate.api.openai_files import IN_MEMORY_BYTES, PARSE_BYTES
from batchgate.config.settings import Settings
from batchgate.lifecycle.openai_input import InputScan
from batchgate.service.openai_batches import PIECE_BYTES, chunks_in_file, found
from batchgate.storage.openai_tables import FileRow
from batchgate.storage.sqlite import SQLiteStore
from openai_batches import BOUNDARY, floor_seconds, make_file, multipart

T = TypeVar("T")
ENDPOINT = "/v1/chat/completions"


def parse(body: bytes) -> File:
    files: list[File] = []
    parser = FormParser(
        "multipart/form-data",
        lambda field: None,
        files.append,
        boundary=BOUNDARY.encode(),
        config={"MAX_MEMORY_FILE_SIZE": IN_MEMORY_BYTES},
    )
    for start in range(0, len(body), PARSE_BYTES):
        parser.write(body[start : start + PARSE_BYTES])
    parser.finalize()
    return files[0]


def pieces(upload: IO[bytes]) -> Iterator[bytes]:
    upload.seek(0)
    while piece := upload.read(PIECE_BYTES):
        yield piece


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
        upload = step("upload: parse", lambda: parse(body))
        row = FileRow("file-steps", "owner", "batch", "in.jsonl", len(file), time.time())
        scan = InputScan(settings.openai_max_batch_lines)
        step(
            "upload: store + check",
            lambda: store.create_file(
                row, scan.pieces(pieces(upload.file_object)), lambda: found(scan, len(file))
            ),
        )
        upload.close()
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
