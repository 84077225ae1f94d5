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
from datetime import datetime
from urllib.parse import urlsplit

import httpx
import psycopg
from core import make_body, post_with_sendall, start_server
from psycopg import sql

from batchgate.storage.migrations.postgres import migrate

ADMIN_URL = os.environ.get(
    "BATCHGATE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def engine_rate(count: int, workers: int, port: int) -> float:
    name = f"batchgate_bench_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = urlsplit(ADMIN_URL)._replace(path=f"/{name}").geturl()
    migrate(url)
    env = {**os.environ, "BATCHGATE_DATABASE_URL": url}
    processes = []
    try:
        processes.append(start_server(port, env, ["--no-worker"]))
        for _ in range(workers):
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "batchgate", "worker", "--log-level", "warning"],
                    env=env,
                )
            )
        time.sleep(1.0)  # workers connected and idle on LISTEN
        headers = {"x-api-key": "bench", "content-type": "application/json"}
        batch = post_with_sendall(port, "/v1/messages/batches", make_body(count), headers)
        base = f"http://127.0.0.1:{port}/v1/messages/batches/{batch['id']}"
        while batch["processing_status"] != "ended":
            time.sleep(0.05)
            batch = httpx.get(base, headers=headers).json()
        return count / (seconds(batch["ended_at"]) - seconds(batch["created_at"]))
    finally:
        for process in processes:
            process.terminate()
            process.wait()
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--workers", default="1,2,4", help="comma-separated worker counts")
    parser.add_argument("--port", type=int, default=8188)
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
