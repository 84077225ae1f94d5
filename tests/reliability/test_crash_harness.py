"""kill -9 at random moments, round after round, on SQLite and on PostgreSQL.

Each round picks one moment at random: a create being uploaded (a sizeable body, sent in
pieces), batches being processed, a cancel, or a results download. The server is killed with
SIGKILL at a random instant of it, restarted, and checked; the next round follows at once,
with the earlier batches still running. At the end every batch has ended, each custom_id is
in its results exactly once, the counts match the results, the client never saw a 5xx, and
each create cut short left the whole batch or nothing.

On PostgreSQL the process is `batchgate serve` with the engine inside, as on SQLite: a kill
takes the API and the engine down together, and the same rounds run on both stores. (Killed
workers under a separate API are tests/test_scale_out.py's.) Its leases are short, so that the
dead process's chunks lapse within a round.

The seed is printed; `BATCHGATE_CRASH_SEED=<seed>` replays a run.
"""

import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest

from conftest import KEY, Server, simple_request

MOMENTS = ("create", "processing", "cancel", "results")
CREATE_SIZE = 1000
CREATE_TEXT = "y" * 1500  # about 1.6 MB a create: it takes a while to upload and store
BATCH_SIZE = 300
UPLOAD_PIECE = 64 * 1024
UPLOAD_PAUSE_SECONDS = 0.004
SETTINGS = {
    "simulator_latency_ms": "20",
    "max_concurrency": "16",
    "chunk_size": "100",
    "flush_seconds": "0.05",
}
POSTGRES_SETTINGS = {**SETTINGS, "lease_seconds": "1"}

pytestmark = pytest.mark.slow


class TricklingTransport(httpx2.HTTPTransport):
    """Sends each create body in pieces with pauses, so that a kill can land mid-upload."""

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.method == "POST" and request.url.path.endswith("/batches"):
            request.stream = Trickle(request.read())
        return super().handle_request(request)


class Trickle(httpx2.SyncByteStream):
    def __init__(self, body: bytes) -> None:
        self._body = body

    def __iter__(self) -> Iterator[bytes]:
        for start in range(0, len(self._body), UPLOAD_PIECE):
            time.sleep(UPLOAD_PAUSE_SECONDS)
            yield self._body[start : start + UPLOAD_PIECE]


@dataclass
class Expected:
    custom_ids: frozenset[str]
    cancel_accepted: bool = False


@dataclass
class Harness:
    server: Server
    rng: random.Random
    batches: dict[str, Expected] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)
    moments: Counter[str] = field(default_factory=Counter)
    create_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=2)
        self.reconnect()

    def reconnect(self) -> None:
        base = self.server.base_url
        self.client = anthropic.Anthropic(base_url=base, api_key=KEY, max_retries=0, timeout=60)
        self.uploader = anthropic.Anthropic(
            base_url=base,
            api_key=KEY,
            max_retries=0,
            timeout=60,
            http_client=httpx2.Client(transport=TricklingTransport()),
        )

    def call(self, what: str, function: Callable[[], Any]) -> Any:
        """Calls the API, noting any 5xx it answers."""
        try:
            return function()
        except anthropic.APIStatusError as error:
            if error.status_code >= 500:
                self.server_errors.append(f"{what}: {error.status_code} {error.message}")
            raise

    def in_background(self, what: str, function: Callable[[], Any]) -> "Future[Any]":
        return self.pool.submit(self.call, what, function)

    def create(self, prefix: str, size: int, text: str = "") -> str:
        batch = self.call(
            "create",
            lambda: self.client.messages.batches.create(requests=requests(prefix, size, text)),
        )
        self.batches[batch.id] = Expected(custom_ids(prefix, size))
        return str(batch.id)

    def kill_after(self, seconds: float) -> None:
        time.sleep(seconds)
        self.server.kill()

    def restart(self) -> None:
        self.server.start()
        self.reconnect()

    def listed(self) -> dict[str, anthropic.types.messages.MessageBatch]:
        pages = self.call("list", lambda: list(self.client.messages.batches.list(limit=100)))
        return {batch.id: batch for batch in pages}

    # --- the moments ------------------------------------------------------------------------

    def measure_create(self) -> None:
        started = time.monotonic()
        batch = self.call(
            "create",
            lambda: self.uploader.messages.batches.create(
                requests=requests("first", CREATE_SIZE, CREATE_TEXT)
            ),
        )
        self.create_seconds = time.monotonic() - started
        self.batches[batch.id] = Expected(custom_ids("first", CREATE_SIZE))

    def kill_during_create(self, prefix: str) -> str:
        body = requests(prefix, CREATE_SIZE, CREATE_TEXT)
        known = set(self.batches)
        pending = self.in_background(
            "create", lambda: self.uploader.messages.batches.create(requests=body)
        )
        self.kill_after(self.rng.uniform(0, 1.2 * self.create_seconds))
        try:
            answered: str | None = pending.result().id
        except anthropic.APIConnectionError:
            answered = None
        self.restart()
        appeared = set(self.listed()) - known
        assert len(appeared) <= 1, appeared
        if answered is not None:
            assert appeared == {answered}
        if appeared:
            [batch_id] = appeared
            self.batches[batch_id] = Expected(custom_ids(prefix, CREATE_SIZE))
            return "answered" if answered else "stored, unanswered"
        return "nothing stored"

    def kill_during_processing(self, prefix: str) -> str:
        self.create(prefix, BATCH_SIZE)
        self.kill_after(self.rng.uniform(0, 0.6))
        self.restart()
        return ""

    def kill_during_cancel(self, prefix: str) -> str:
        batch_id = self.create(prefix, BATCH_SIZE)
        time.sleep(self.rng.uniform(0, 0.3))
        pending = self.in_background(
            "cancel", lambda: self.client.messages.batches.cancel(batch_id)
        )
        self.kill_after(self.rng.uniform(0, 0.05))
        try:
            pending.result()
            self.batches[batch_id].cancel_accepted = True
        except anthropic.APIConnectionError:
            pass
        self.restart()
        status = self.call("retrieve", lambda: self.client.messages.batches.retrieve(batch_id))
        if self.batches[batch_id].cancel_accepted:
            assert status.processing_status in ("canceling", "ended")
            return "answered"
        # Committed just before the kill, or not at all.
        return "unanswered, " + ("committed" if status.cancel_initiated_at else "not committed")

    def kill_during_results(self, prefix: str) -> str:
        ended = [batch.id for batch in self.listed().values() if batch.processing_status == "ended"]
        if not ended:
            ended = [self.create(prefix, BATCH_SIZE)]
            wait_until_all_ended(self, ended)
        batch_id = self.rng.choice(ended)

        def download() -> int:
            lines = 0
            for _ in self.client.messages.batches.results(batch_id):
                lines += 1
                if lines % 50 == 0:
                    time.sleep(0.002)
            return lines

        pending = self.in_background("results", download)
        self.kill_after(self.rng.uniform(0, 0.08))
        try:
            pending.result()
        except anthropic.APIConnectionError:
            pass
        except httpx2.HTTPError:  # the stream cut short mid-body
            pass
        self.restart()
        return ""

    def check_counts(self) -> None:
        """After each restart: every batch listed, whole, its counts adding up."""
        listed = self.listed()
        assert set(listed) == set(self.batches)
        for batch_id, batch in listed.items():
            counts = batch.request_counts
            total = (
                counts.processing + counts.succeeded + counts.errored + counts.canceled
                + counts.expired
            )  # fmt: skip
            assert total == len(self.batches[batch_id].custom_ids), batch


def requests(prefix: str, size: int, text: str = "") -> Any:
    return [simple_request(f"{prefix}-{i}", f"{prefix} {i} {text}") for i in range(size)]


def custom_ids(prefix: str, size: int) -> frozenset[str]:
    return frozenset(f"{prefix}-{i}" for i in range(size))


def wait_until_all_ended(harness: Harness, batch_ids: list[str], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    for batch_id in batch_ids:
        while True:
            batch = harness.call(
                "retrieve", lambda b=batch_id: harness.client.messages.batches.retrieve(b)
            )
            if batch.processing_status == "ended":
                break
            assert time.monotonic() < deadline, f"{batch_id} did not end: {batch}"
            time.sleep(0.1)


def check_every_batch(harness: Harness) -> None:
    wait_until_all_ended(harness, list(harness.batches))
    for batch_id, expected in harness.batches.items():
        batch = harness.call(
            "retrieve", lambda b=batch_id: harness.client.messages.batches.retrieve(b)
        )
        results = harness.call(
            "results", lambda b=batch_id: list(harness.client.messages.batches.results(b))
        )
        seen = Counter(result.custom_id for result in results)
        assert set(seen) == expected.custom_ids, batch_id
        assert set(seen.values()) == {1}, [cid for cid, n in seen.items() if n > 1][:5]
        by_type = Counter(result.result.type for result in results)
        counts = batch.request_counts
        assert counts.processing == 0
        assert by_type == Counter(
            {
                kind: count
                for kind in ("succeeded", "errored", "canceled", "expired")
                if (count := getattr(counts, kind))
            }
        ), batch_id
        # Canceled results only where a cancel committed, and every answered cancel did.
        if by_type["canceled"] or expected.cancel_accepted:
            assert batch.cancel_initiated_at is not None, batch_id


def run_rounds(server: Server, rounds: int) -> None:
    seed = int(os.environ.get("BATCHGATE_CRASH_SEED", random.randrange(2**32)))
    print(f"crash harness: seed {seed} (BATCHGATE_CRASH_SEED={seed} replays it), {rounds} rounds")
    harness = Harness(server, random.Random(seed))
    started = time.monotonic()
    try:
        harness.measure_create()
        for number in range(rounds):
            moment = harness.rng.choice(MOMENTS)
            outcome = getattr(harness, f"kill_during_{moment}")(f"round{number}")
            harness.moments[f"{moment} {outcome}".strip()] += 1
            harness.check_counts()
        check_every_batch(harness)
        assert harness.server_errors == []
    except BaseException:
        print(f"crash harness: failed with seed {seed}")
        raise
    finally:
        harness.pool.shutdown(cancel_futures=True)
    print(
        f"crash harness: {rounds} kills, {len(harness.batches)} batches in"
        f" {time.monotonic() - started:.1f} s; moments {dict(harness.moments)}"
    )


def rounds(long_run: bool) -> int:
    return 100 if long_run else 20


def test_kill_9_at_random_moments_on_sqlite(tmp_path: Path, long_run: bool) -> None:
    server = Server(tmp_path, **SETTINGS).start()
    try:
        run_rounds(server, rounds(long_run))
    finally:
        server.stop()


def test_kill_9_at_random_moments_on_postgresql(
    database_url: str, tmp_path: Path, long_run: bool
) -> None:
    server = Server(tmp_path, database_url=database_url, **POSTGRES_SETTINGS).start()
    try:
        run_rounds(server, rounds(long_run))
    finally:
        server.stop()
