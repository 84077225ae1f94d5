"""Dead-worker benchmark: how soon the chunks of a worker killed with `kill -9` run elsewhere.

Three `batchgate worker` processes and one `serve --no-worker` on a fresh PostgreSQL database
(see bench/scale.py) run a batch on the simulator at 50 ms per request, once undisturbed and
once while workers are killed with SIGKILL mid-batch, spread over its first half, each kill
followed by a replacement worker (as a supervisor would start one). At each kill the benchmark
notes the chunks the victim held (from the `chunks` table) and polls, every 10 ms, until every
one of them is

- `freed_s`: no longer leased to the dead worker (back in the queue, or further),
- `taken_s`: leased by another worker (or done), and
- `progress_s`: a part of its results committed since the kill (or done): running elsewhere.

Leases keep their default of 30 s: until they lapse, nothing else frees a dead worker's chunks
unless the engines notice that it is gone.
"""

import argparse
import time
from dataclasses import dataclass, field

import psycopg
from psycopg.rows import TupleRow
from saturation import free_port
from scale import Cluster, cluster, seconds

POLL_SECONDS = 0.01
WORKERS = 3
# Per chunk: state, whether its lease is the dead worker's, its parts, its parts at the kill.
ChunkNow = tuple[int, bool, int, int]


@dataclass
class Takeover:
    """The chunks a killed worker held, each with its parts then, and how soon they moved on."""

    pid: int
    parts_at_kill: dict[tuple[str, int], int]
    killed_at: float
    freed_s: float | None = None
    taken_s: float | None = None
    progress_s: float | None = None

    def check(self, db: psycopg.Connection[TupleRow]) -> bool:
        """Polls the chunks for the times still unknown; whether all three are known now."""
        if self.progress_s is None:
            rows: list[ChunkNow] = db.execute(
                "SELECT c.state, c.lease_owner LIKE %s, (SELECT count(*) FROM results r"
                "   WHERE r.batch_id = c.batch_id AND r.chunk_no = c.chunk_no), k.parts"
                " FROM unnest(%s::text[], %s::integer[], %s::integer[])"
                "   AS k(batch_id, chunk_no, parts)"
                " JOIN chunks c ON c.batch_id = k.batch_id AND c.chunk_no = k.chunk_no",
                (
                    f"%:{self.pid}:%",
                    [batch_id for batch_id, _ in self.parts_at_kill],
                    [chunk_no for _, chunk_no in self.parts_at_kill],
                    list(self.parts_at_kill.values()),
                ),
            ).fetchall()
            elapsed = time.monotonic() - self.killed_at
            if self.freed_s is None and all(state != 1 or not dead for state, dead, *_ in rows):
                self.freed_s = elapsed
            if self.taken_s is None and all(
                state == 2 or (state == 1 and not dead) for state, dead, *_ in rows
            ):
                self.taken_s = elapsed
            if all(state == 2 or parts > before for state, _, parts, before in rows):
                self.progress_s = elapsed
        return None not in (self.freed_s, self.taken_s, self.progress_s)


@dataclass
class Run:
    batch_seconds: float
    takeovers: list[Takeover] = field(default_factory=list)


def leased_to(db: psycopg.Connection[TupleRow], pid: int) -> list[tuple[str, int]]:
    """The chunks leased to the worker with this process id."""
    return [
        (batch_id, chunk_no)
        for batch_id, chunk_no in db.execute(
            "SELECT batch_id, chunk_no FROM chunks WHERE state = 1 AND lease_owner LIKE %s",
            (f"%:{pid}:%",),
        )
    ]


def parts_of(
    db: psycopg.Connection[TupleRow], chunks: list[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    return {
        chunk: db.execute(
            "SELECT count(*) FROM results WHERE batch_id = %s AND chunk_no = %s", chunk
        ).fetchall()[0][0]
        for chunk in chunks
    }


def kill_a_worker(running: Cluster, db: psycopg.Connection[TupleRow]) -> Takeover:
    """Kills the worker that holds the most chunks of those running since the start, and starts
    another in its place."""
    candidates = [worker for worker in running.workers[:WORKERS] if worker.poll() is None]
    held = {worker.pid: leased_to(db, worker.pid) for worker in candidates}
    victim = max(candidates, key=lambda worker: len(held[worker.pid]))
    if not held[victim.pid]:
        raise RuntimeError("no worker holds a chunk")
    killed_at = time.monotonic()
    victim.kill()
    victim.wait()
    running.start_worker()
    # Counted once it is dead: a part it committed until then is no progress elsewhere.
    return Takeover(victim.pid, parts_of(db, held[victim.pid]), killed_at)


def run(count: int, latency_ms: int, kills: int, port: int) -> Run:
    with cluster(WORKERS, port, simulator_latency_ms=str(latency_ms)) as running:
        batch = running.create(count)
        takeovers: list[Takeover] = []
        with psycopg.connect(running.url, autocommit=True) as db:
            while True:
                # Every takeover polled on every turn: none waits for another's.
                known = [takeover.check(db) for takeover in takeovers]
                if len(takeovers) == kills:
                    if all(known):
                        break
                elif running.retrieve(batch["id"])["request_counts"]["succeeded"] >= (
                    count * (len(takeovers) + 1) // (2 * (kills + 1))
                ):
                    takeovers.append(kill_a_worker(running, db))
                time.sleep(POLL_SECONDS)
        batch = running.wait_until_ended(batch)
    return Run(seconds(batch["ended_at"]) - seconds(batch["created_at"]), takeovers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=60_000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--port", type=int, default=free_port(), help="(default: a free one)")
    args = parser.parse_args()
    runs = [
        ("undisturbed", run(args.requests, args.latency_ms, 0, args.port)),
        (f"{args.kills} killed", run(args.requests, args.latency_ms, args.kills, args.port)),
    ]
    print(
        f"PostgreSQL, {WORKERS} workers, {args.requests:,} requests, simulator at"
        f" {args.latency_ms} ms, 30 s leases (figures per kill)"
    )
    print(f"{'run':<12}{'batch_s':>8}{'req/s':>8}{'freed_s':>14}{'taken_s':>14}{'progress_s':>14}")
    for name, result in runs:
        figures = [
            " / ".join(f"{getattr(takeover, figure):.2f}" for takeover in result.takeovers) or "-"
            for figure in ("freed_s", "taken_s", "progress_s")
        ]
        rate = args.requests / result.batch_seconds
        print(
            f"{name:<12}{result.batch_seconds:>8.2f}{rate:>8,.0f}"
            + "".join(f"{figure:>14}" for figure in figures)
        )


if __name__ == "__main__":
    main()
