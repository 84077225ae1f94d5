"""PostgreSQL lost mid-run: the API answers 503 with retry-after, the engine waits and resumes.

`batchgate serve` (API and engine in one process) reaches the real server through a proxy that
the test cuts for several seconds while a batch runs, and whose connections it also kills on
the server side (pg_terminate_backend). Nothing crashes and nothing is lost: the batch ends
with each custom_id exactly once.
"""

import time
from collections import Counter
from pathlib import Path

import anthropic
import httpx
import psycopg
import pytest

from conftest import Cluster, Server, simple_request, wait_until_ended
from postgres_databases import ADMIN_URL
from reliability.tcp_proxy import CuttableProxy
from test_scale_out import wait_for_chunks_leased_to

REQUESTS = 1500
# Longer than the pool's first reconnect attempts (1, 3, 7 s after the loss): the answers must
# come back within a retrieve's wait for a connection (5 s) of the restore, not at the pool's
# next doubling (15 s).
CUT_SECONDS = 8.0
SETTINGS = {
    "simulator_latency_ms": "40",
    "max_concurrency": "10",
    "chunk_size": "100",
    "flush_seconds": "0.05",
    # Shorter than a cut: leases lapse while the database is away, and must be taken back.
    "lease_seconds": "3",
}


def wait_for_progress(client: anthropic.Anthropic, batch_id: str, beyond: int) -> int:
    deadline = time.monotonic() + 30
    while (done := client.messages.batches.retrieve(batch_id).request_counts.succeeded) <= beyond:
        assert time.monotonic() < deadline, f"no progress beyond {beyond}"
        time.sleep(0.05)
    return done


def assert_unavailable_answer(error: anthropic.APIStatusError) -> None:
    assert error.status_code == 503, error
    assert int(error.response.headers["retry-after"]) > 0
    assert error.body == {
        "type": "error",
        "error": {
            "type": "api_error",
            "message": "The database is unavailable just now. Try again shortly.",
        },
        "request_id": error.response.headers["request-id"],
    }


def terminate_connections(database_url: str) -> int:
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return len(rows)


def test_postgresql_lost_mid_batch_then_back(
    database_url: str, tmp_path: Path, long_run: bool
) -> None:
    proxy = CuttableProxy(database_url)
    server = Server(tmp_path, database_url=proxy.url, **SETTINGS).start()
    try:
        client = server.client()
        batch = client.messages.batches.create(
            requests=[simple_request(f"r{i}", f"prompt {i}") for i in range(REQUESTS)]  # type: ignore[misc]
        )
        done = wait_for_progress(client, batch.id, beyond=0)
        for _ in range(3 if long_run else 1):
            proxy.cut()
            cut_at = time.monotonic()
            with pytest.raises(anthropic.APIStatusError) as refused:
                client.messages.batches.retrieve(batch.id)
            assert_unavailable_answer(refused.value)
            ready = httpx.get(f"{server.base_url}/readyz", timeout=10)
            assert ready.status_code == 503 and ready.json()["reason"] == "database unreachable"
            time.sleep(max(0.0, CUT_SECONDS - (time.monotonic() - cut_at)))
            assert server.process is not None and server.process.poll() is None
            proxy.restore()
            done = wait_for_progress(client, batch.id, beyond=done)
            assert httpx.get(f"{server.base_url}/readyz", timeout=10).status_code == 200

            assert terminate_connections(database_url) > 0
            done = wait_for_progress(client, batch.id, beyond=done)

        ended = wait_until_ended(client, batch.id, timeout=120)
        assert ended.request_counts.succeeded == REQUESTS
        seen = Counter(response.custom_id for response in client.messages.batches.results(batch.id))
        assert set(seen) == {f"r{i}" for i in range(REQUESTS)}
        assert set(seen.values()) == {1}
    finally:
        server.stop()
        proxy.close()

    log = server.log.read_text()
    assert "Traceback" not in log
    waits = log.count("the engine waits for it and retries")
    assert 1 <= waits <= (6 if long_run else 2), waits
    assert "the engine resumes" in log


def test_a_worker_cut_off_from_the_database_commits_nothing_of_its_chunks_taken_meanwhile(
    cluster: Cluster,
) -> None:
    """One of two workers loses every connection to the database, its process alive: the other
    takes its chunks within seconds (its lock went with its connections). Back, the cut-off
    worker finds them taken and commits none of the results it ran meanwhile."""
    settings = {
        "simulator_latency_ms": "50",
        "max_concurrency": "16",
        "chunk_size": "100",
        "flush_seconds": "0.1",
    }
    proxy = CuttableProxy(cluster.database_url)
    api = cluster.start_api(chunk_size="100")
    cut_off = cluster.start_worker(via=proxy.url, **settings)
    cluster.start_worker(**settings)
    try:
        client = api.client()
        batch = client.messages.batches.create(
            requests=[simple_request(f"r{i}", f"prompt {i}") for i in range(3000)]  # type: ignore[misc]
        )
        wait_for_chunks_leased_to(cut_off, cluster.database_url, holding=True, within=30)
        proxy.cut()
        wait_for_chunks_leased_to(cut_off, cluster.database_url, holding=False, within=10)
        time.sleep(1.0)  # it runs requests of chunks that are no longer its own
        proxy.restore()

        ended = wait_until_ended(client, batch.id, timeout=60)
        assert ended.request_counts.succeeded == 3000
        seen = Counter(response.custom_id for response in client.messages.batches.results(batch.id))
        assert len(seen) == 3000 and set(seen.values()) == {1}
        assert cut_off.process.poll() is None
        cut_off.stop()
    finally:
        if cut_off.process.poll() is None:
            cut_off.kill()  # a failure left it cut off: it could not shut down in time
        proxy.close()
    log = (cluster.directory / "workers.log").read_text()
    assert "lost the lease of" in log
    assert "Traceback" not in log
