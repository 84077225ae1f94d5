"""SIGTERM mid-batch: the process finishes what it started, hands back the rest, exits 0."""

import asyncio
import signal
import socket
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import anthropic
import httpx
import pytest

from batchgate.config.routes import DEFAULT_ROUTES
from batchgate.config.settings import Settings
from batchgate.engine.routing import Router
from batchgate.engine.worker import Engine
from batchgate.storage import open_store
from conftest import KEY, Cluster, Server, simple_request, wait_until_ended

SLOW = {"simulator_latency_ms": "100", "flush_seconds": "0.05", "chunk_size": "50"}


def wait_for_progress(client: anthropic.Anthropic, batch_id: str) -> int:
    deadline = time.monotonic() + 20
    while (done := client.messages.batches.retrieve(batch_id).request_counts.succeeded) == 0:
        assert time.monotonic() < deadline, "the batch never started"
        time.sleep(0.05)
    return done


def assert_each_request_once(client: anthropic.Anthropic, batch_id: str, count: int) -> None:
    seen = Counter(response.custom_id for response in client.messages.batches.results(batch_id))
    assert set(seen) == {f"r{i}" for i in range(count)}
    assert set(seen.values()) == {1}


def test_sigterm_mid_batch_exits_0_and_the_restart_finishes_each_request_once(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(max_concurrency="20", **SLOW)
    client = server.client()
    batch = client.messages.batches.create(
        requests=[simple_request(f"r{i}", f"prompt {i}") for i in range(600)]  # type: ignore[misc]
    )
    wait_for_progress(client, batch.id)
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=15) == 0

    with sqlite3.connect(server.database) as db:
        leased = db.execute("SELECT count(*) FROM chunks WHERE state = 1").fetchone()[0]
        committed = db.execute("SELECT succeeded FROM batches").fetchone()[0]
    assert leased == 0, "every unfinished chunk goes back to the queue"
    assert 0 < committed < 600, "the SIGTERM should land mid-batch"

    server.start()
    client = server.client()
    assert wait_until_ended(client, batch.id).request_counts.succeeded == 600
    assert_each_request_once(client, batch.id, 600)


def test_a_sigtermed_workers_chunks_go_to_another_worker_at_once(cluster: Cluster) -> None:
    """The lease is a minute long: only a released chunk can be taken over within seconds."""
    worker_settings = {"max_concurrency": "8", "lease_seconds": "60", **SLOW}
    api = cluster.start_api(chunk_size="50")
    first = cluster.start_worker(**worker_settings)
    client = api.client()
    batch = client.messages.batches.create(
        requests=[simple_request(f"r{i}", f"prompt {i}") for i in range(300)]  # type: ignore[misc]
    )
    wait_for_progress(client, batch.id)
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(timeout=15) == 0
    assert client.messages.batches.retrieve(batch.id).processing_status == "in_progress"

    cluster.start_worker(**worker_settings)
    ended = wait_until_ended(client, batch.id, timeout=20)
    assert ended.request_counts.succeeded == 300
    assert_each_request_once(client, batch.id, 300)


def local_address(response: httpx.Response) -> object:
    """The client end of the connection that carried the response."""
    return response.extensions["network_stream"].get_extra_info("client_addr")


def test_after_sigterm_creates_on_open_connections_get_503_while_reads_finish(
    start_server: Callable[..., Server],
) -> None:
    server = start_server()
    client = server.client()
    # Results far beyond the socket buffers: a download read slowly stays in flight.
    size = 25_000
    batch = client.messages.batches.create(
        requests=[simple_request(f"r{i}", f"prompt {i} " + "x" * 300) for i in range(size)]  # type: ignore[misc]
    )
    wait_until_ended(client, batch.id)
    headers = {"x-api-key": KEY}
    small_buffer = [(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)]
    reader = httpx.Client(
        base_url=server.base_url,
        headers=headers,
        transport=httpx.HTTPTransport(socket_options=small_buffer),
    )
    writer = httpx.Client(
        base_url=server.base_url, headers=headers, limits=httpx.Limits(max_connections=1)
    )
    with (
        reader,
        writer,
        reader.stream("GET", f"/v1/messages/batches/{batch.id}/results") as download,
    ):
        chunks = download.iter_bytes()
        received = [next(chunks)]
        connection = local_address(writer.get("/v1/messages/batches"))

        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        while (ready := writer.get("/readyz")).status_code == 200:
            assert time.monotonic() < deadline, "the drain never began"
            time.sleep(0.05)
        assert ready.json() == {"status": "unavailable", "reason": "shutting down"}

        refused = writer.post("/v1/messages/batches", json={"requests": [simple_request("late")]})
        assert local_address(refused) == connection, "the same keep-alive connection"
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "10"
        assert refused.json()["type"] == "error"
        assert refused.json()["error"]["type"] == "api_error"
        assert writer.get(f"/v1/messages/batches/{batch.id}").status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{server.base_url}/healthz")

        received.extend(chunks)
    lines = b"".join(received).splitlines()
    assert len(lines) == size
    assert server.process.wait(timeout=15) == 0
    with sqlite3.connect(server.database) as db:
        assert db.execute("SELECT count(*) FROM batches").fetchone() == (1,)


def test_an_engine_stopped_before_it_ran_returns_at_once(tmp_path: Path) -> None:
    """`serve` on a port already taken: uvicorn cannot bind and shuts the app down while the
    engine's thread may not have started its loop yet. The engine must still stop (its webhook
    deliveries too), or the process waits forever and ignores SIGTERM."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'b.db'}")
    store = open_store(settings.database_url)
    engine = Engine(store, settings, Router.from_config(DEFAULT_ROUTES, settings))
    try:
        engine.stop()
        asyncio.run(asyncio.wait_for(engine.run(), timeout=20))
    finally:
        store.close()
    assert not engine.running
