"""Scale-out benchmark: engine requests/s with 1, 2 and 4 worker processes on PostgreSQL.

Each run gets a fresh database on the local server (BATCHGATE_BENCH_POSTGRES_URL, an admin URL;
default postgresql://postgres@127.0.0.1:5432/postgres), one `serve --no-worker` process and N
`batchgate worker` processes on the zero-latency simulator. The figure is the batch's requests
divided by the time from `created_at` to `ended_at` (server timestamps).
"""

import argparse
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
from core import make_body, post_with_sendall, start_server
from psycopg import sql
from saturation import free_port

from batchgate.storage.migrations.postgres import migrate

ADMIN_URL = os.environ.get(
    "BATCHGATE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
HEADERS = {"x-api-key": "bench", "content-type": "application/json"}


def seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


@dataclass
class Cluster:
    """One `serve --no-worker` and `batchgate worker` processes on a database of their own."""

    url: str
    port: int
    env: dict[str, str]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_worker(self) -> subprocess.Popen[bytes]:
        worker = subprocess.Popen(
            [sys.executable, "-m", "batchgate", "worker", "--log-level", "warning"], env=self.env
        )
        self.workers.append(worker)
        return worker

    def wait_until_listening(self) -> None:
        """Until every live worker waits on LISTEN: connected, and idle."""
        alive = sum(worker.poll() is None for worker in self.workers)
        with psycopg.connect(self.url, autocommit=True) as db:
            for _ in range(600):
                [(listening,)] = db.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND application_name = 'batchgate-listener'"
                ).fetchall()
                if listening >= alive:
                    return
                time.sleep(0.05)
        raise RuntimeError("the workers did not start")

    def create(self, count: int) -> dict[str, Any]:
        batch: dict[str, Any] = post_with_sendall(
            self.port, "/v1/messages/batches", make_body(count), HEADERS
        )
        return batch

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.port}/v1/messages/batches/{batch_id}"
        batch: dict[str, Any] = httpx.get(url, headers=HEADERS).json()
        return batch

    def wait_until_ended(self, batch: dict[str, Any]) -> dict[str, Any]:
        while batch["processing_status"] != "ended":
            time.sleep(0.05)
            batch = self.retrieve(batch["id"])
        return batch


@contextmanager
def cluster(workers: int, port: int, **settings: str) -> Iterator[Cluster]:
    """A fresh database, its API process and `workers` workers, all started and listening;
    `settings` are BATCHGATE_<NAME> values for every process."""
    name = f"batchgate_bench_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = urlsplit(ADMIN_URL)._replace(path=f"/{name}").geturl()
    migrate(url)
    env = {
        **os.environ,
        "BATCHGATE_DATABASE_URL": url,
        **{f"BATCHGATE_{key.upper()}": value for key, value in settings.items()},
    }
    running = Cluster(url, port, env)
    api = None
    try:
        api = start_server(port, env, ["--no-worker"])
        for _ in range(workers):
            running.start_worker()
        running.wait_until_listening()
        yield running
    finally:
        for process in [*running.workers, *([api] if api else [])]:
            process.terminate()
            process.wait()
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def engine_rate(count: int, workers: int, port: int) -> float:
    with cluster(workers, port) as running:
        batch = running.wait_until_ended(running.create(count))
    return count / (seconds(batch["ended_at"]) - seconds(batch["created_at"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--workers", default="1,2,4", help="comma-separated worker counts")
    parser.add_argument("--port", type=int, default=free_port(), help="(default: a free one)")
    args = parser.parse_args()
    rows = [
        (int(n), engine_rate(args.requests, int(n), args.port)) for n in args.workers.split(",")
    ]
    single = rows[0][1]
    print(f"PostgreSQL engine, {args.requests:,} requests, zero-latency simulator")
    print(f"{'workers':<10}{'req/s':>12}{'vs ' + str(rows[0][0]):>10}")
    for workers, rate in rows:
        print(f"{workers:<10}{rate:>12,.0f}{rate / single:>10.2f}")


if __name__ == "__main__":
    main()
