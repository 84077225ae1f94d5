"""Many processes on one PostgreSQL database: API-only servers, workers, crashes, wake-ups."""

import random
import time
from collections import Counter
from pathlib import Path

import anthropic
import psycopg

from batchgate.storage.migrations import known_versions
from conftest import KEY, Cluster, Server, Worker, run_cli, simple_request, wait_until_ended
from postgres_databases import Databases


def wait_for_chunks_leased_to(
    worker: Worker, database_url: str, holding: bool, within: float
) -> None:
    """Until the worker holds some chunk (`holding`), or none."""
    deadline = time.monotonic() + within
    while True:
        with psycopg.connect(database_url, autocommit=True) as db:
            [(count,)] = db.execute(
                "SELECT count(*) FROM chunks WHERE state = 1 AND lease_owner LIKE %s",
                (f"%:{worker.process.pid}:%",),
            ).fetchall()
        if (count > 0) == holding:
            return
        assert time.monotonic() < deadline, f"{count} chunks leased to it after {within} s"
        time.sleep(0.02)


def test_serve_refuses_an_unmigrated_database_until_migrate(databases: Databases) -> None:
    url = databases.create()
    refused = run_cli("serve", "--port", "1", database_url=url)
    assert refused.returncode == 2
    assert "run `batchgate migrate`" in refused.stderr
    worker_refused = run_cli("worker", database_url=url)
    assert worker_refused.returncode == 2 and "batchgate migrate" in worker_refused.stderr

    first = run_cli("migrate", database_url=url)
    shipped = list(known_versions("postgres"))
    assert first.returncode == 0 and f"Applied migrations {shipped}" in first.stdout
    again = run_cli("migrate", database_url=url)
    assert again.returncode == 0 and "up to date" in again.stdout


def test_workers_need_postgresql(tmp_path: Path) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'x.db'}"
    assert "needs a PostgreSQL" in run_cli("worker", database_url=sqlite_url).stderr
    no_worker = run_cli("serve", "--no-worker", database_url=sqlite_url)
    assert no_worker.returncode == 2 and "needs a PostgreSQL" in no_worker.stderr


def test_kill_9_of_workers_mid_batch_loses_nothing(cluster: Cluster) -> None:
    """3 workers and 1 API process; two workers are killed with SIGKILL during a 20,000-request
    batch. Their leases lapse, the others finish their chunks: every request ends exactly once."""
    worker_settings = {
        "simulator_latency_ms": "4",
        "max_concurrency": "8",
        "lease_seconds": "2",
        "flush_seconds": "0.1",
        "chunk_size": "250",
    }
    api = cluster.start_api(chunk_size="250")
    for _ in range(3):
        cluster.start_worker(**worker_settings)
    client = api.client()
    batch = client.messages.batches.create(
        requests=[simple_request(f"q-{i}", f"question {i}") for i in range(20_000)]  # type: ignore[misc]
    )
    rng = random.Random(11)
    for _ in range(2):
        time.sleep(rng.uniform(0.8, 1.5))
        assert client.messages.batches.retrieve(batch.id).processing_status == "in_progress"
        victim = rng.choice([w for w in cluster.workers if w.process.poll() is None])
        victim.kill()
        cluster.start_worker(**worker_settings)

    ended = wait_until_ended(client, batch.id, timeout=120)
    assert ended.request_counts.succeeded == 20_000
    assert ended.request_counts.errored == 0
    seen = Counter(response.custom_id for response in client.messages.batches.results(batch.id))
    assert len(seen) == 20_000 and set(seen.values()) == {1}


def test_a_killed_workers_chunks_run_elsewhere_long_before_its_leases_lapse(
    cluster: Cluster,
) -> None:
    """kill -9 of one of three workers mid-batch: the others take its chunks as soon as the
    database drops its lock with its connections, not once its leases (60 s here) lapse."""
    settings = {
        "simulator_latency_ms": "50",
        "max_concurrency": "16",
        "chunk_size": "200",
        "lease_seconds": "60",
    }
    api = cluster.start_api(chunk_size="200")
    for _ in range(3):
        cluster.start_worker(**settings)
    victim = cluster.workers[0]
    client = api.client()
    batch = client.messages.batches.create(
        requests=[simple_request(f"q-{i}", f"question {i}") for i in range(3000)]  # type: ignore[misc]
    )
    wait_for_chunks_leased_to(victim, cluster.database_url, holding=True, within=30)
    assert client.messages.batches.retrieve(batch.id).processing_status == "in_progress"
    victim.kill()
    killed_at = time.monotonic()

    wait_for_chunks_leased_to(victim, cluster.database_url, holding=False, within=10)
    ended = wait_until_ended(client, batch.id, timeout=60)
    assert time.monotonic() - killed_at < 20
    assert ended.request_counts.succeeded == 3000
    seen = Counter(response.custom_id for response in client.messages.batches.results(batch.id))
    assert len(seen) == 3000 and set(seen.values()) == {1}


def test_idle_workers_start_a_new_batch_at_once(cluster: Cluster) -> None:
    api = cluster.start_api()
    cluster.start_worker()
    cluster.start_worker()
    client = api.client()
    warm_up = client.messages.batches.create(requests=[simple_request("warm")])  # type: ignore[list-item]
    wait_until_ended(client, warm_up.id)
    time.sleep(1.5)  # idle: the workers wait on LISTEN, their fallback poll is 0.25 s

    timings = []
    for attempt in range(5):
        batch = client.messages.batches.create(requests=[simple_request(f"r{attempt}")])  # type: ignore[list-item]
        ended = wait_until_ended(client, batch.id)
        # By the server's own clock: the client's polling and a busy machine's HTTP are not the
        # workers' delay.
        assert ended.ended_at is not None
        timings.append((ended.ended_at - ended.created_at).total_seconds())
        time.sleep(0.3)
    assert sorted(timings)[2] < 0.2, timings


def test_cancel_on_the_api_stops_work_on_another_process(cluster: Cluster) -> None:
    api = cluster.start_api()
    cluster.start_worker(simulator_latency_ms="200", max_concurrency="4")
    client = api.client()
    batch = client.messages.batches.create(
        requests=[simple_request(f"r{i}") for i in range(400)]  # type: ignore[misc]
    )
    deadline = time.monotonic() + 10
    while client.messages.batches.retrieve(batch.id).request_counts.succeeded == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    canceled_at = time.monotonic()
    client.messages.batches.cancel(batch.id)
    ended = wait_until_ended(client, batch.id, timeout=10)
    assert time.monotonic() - canceled_at < 2.0
    assert ended.request_counts.canceled > 300
    assert ended.request_counts.succeeded + ended.request_counts.canceled == 400


def test_one_process_serves_and_works_on_postgresql(database_url: str, tmp_path: Path) -> None:
    server = Server(tmp_path, database_url=database_url).start()
    try:
        client: anthropic.Anthropic = server.client()
        batch = client.messages.batches.create(
            requests=[simple_request(f"r{i}") for i in range(50)]  # type: ignore[misc]
        )
        assert wait_until_ended(client, batch.id).request_counts.succeeded == 50
        assert len(list(client.messages.batches.results(batch.id))) == 50
        assert KEY  # the same key scoping applies: another key sees nothing
        assert list(server.client("other-key").messages.batches.list()) == []
    finally:
        server.stop()
