"""Idempotency-Key on creates, through the official SDK, on both stores."""

import hashlib
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable

import anthropic
import httpx
import orjson
import psycopg
import pytest

from conftest import Server, simple_request


def labeled_batches(client: anthropic.Anthropic, run: str) -> list[str]:
    page = client.messages.batches.list(limit=100, extra_query={"metadata[run]": run})
    return [batch.id for batch in page.data]


def body(run: str, count: int = 3) -> dict[str, object]:
    return {
        "requests": [simple_request(f"r{i}") for i in range(count)],
        "metadata": {"run": run},
    }


def create(client: anthropic.Anthropic, key: str, run: str, count: int = 3) -> "httpx.Response":
    raw = client.messages.batches.with_raw_response.create(
        requests=body(run, count)["requests"],  # type: ignore[arg-type]
        extra_body={"metadata": {"run": run}},
        extra_headers={"Idempotency-Key": key},
    )
    return raw.http_response


def test_a_retry_with_the_same_key_and_body_returns_the_first_batch(
    start_on_store: Callable[..., Server],
) -> None:
    server = start_on_store()
    client = server.client()
    key, run = str(uuid.uuid4()), uuid.uuid4().hex
    first = create(client, key, run)
    again = create(client, key, run)
    assert first.status_code == again.status_code == 200
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert labeled_batches(client, run) == [first.json()["id"]]
    # Keys belong to a workspace: another key's create with the same one is its own.
    other = create(server.client("sk-other"), key, run)
    assert other.status_code == 200 and other.json()["id"] != first.json()["id"]


def test_the_same_key_with_another_body_is_422(start_on_store: Callable[..., Server]) -> None:
    server = start_on_store()
    client = server.client()
    key, run = str(uuid.uuid4()), uuid.uuid4().hex
    create(client, key, run)
    with pytest.raises(anthropic.UnprocessableEntityError) as refused:
        create(client, key, run, count=4)
    assert refused.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "different body" in refused.value.message
    assert len(labeled_batches(client, run)) == 1


def claim_in_progress(server: Server, store_kind: str, key: str, digest: str) -> None:
    """A claim as a create still being stored leaves it (no batch yet), in the workspace of
    the batches already there."""
    statement = (
        "INSERT INTO idempotency_keys (owner, key, digest, created_at)"
        " SELECT owner, {m}, {m}, {m} FROM batches LIMIT 1"
    )
    if store_kind == "sqlite":
        with sqlite3.connect(server.database) as db:
            db.execute(statement.format(m="?"), (key, digest, time.time()))
    else:
        with psycopg.connect(server.env["BATCHGATE_DATABASE_URL"], autocommit=True) as db:
            db.execute(statement.format(m="%s").encode(), (key, digest, time.time()))


def finish_claim(server: Server, store_kind: str, key: str, batch_id: str) -> None:
    statement = "UPDATE idempotency_keys SET batch_id = {m} WHERE key = {m}"
    if store_kind == "sqlite":
        with sqlite3.connect(server.database) as db:
            db.execute(statement.format(m="?"), (batch_id, key))
    else:
        with psycopg.connect(server.env["BATCHGATE_DATABASE_URL"], autocommit=True) as db:
            db.execute(statement.format(m="%s").encode(), (batch_id, key))


def test_a_create_still_being_stored_is_409_and_the_sdk_retries_until_it_is_there(
    start_on_store: Callable[..., Server], store_kind: str
) -> None:
    server = start_on_store()
    client = server.client()
    run = uuid.uuid4().hex
    stored = client.messages.batches.create(
        requests=body(run)["requests"],  # type: ignore[arg-type]
        extra_body={"metadata": {"run": run}},
    )
    key = str(uuid.uuid4())
    # The digest of the exact body the SDK sends for this create.
    sent = client.messages.batches.with_raw_response.create(
        requests=body(run)["requests"],  # type: ignore[arg-type]
        extra_body={"metadata": {"run": run}},
        extra_headers={"Idempotency-Key": "probe-" + key},
    )
    digest = hashlib.sha256(sent.http_request.content).hexdigest()
    assert orjson.loads(sent.http_request.content)["metadata"] == {"run": run}
    claim_in_progress(server, store_kind, key, digest)

    with pytest.raises(anthropic.ConflictError) as in_progress:
        create(client, key, run)
    assert "still being stored" in in_progress.value.message

    # The first create's batch is stored while the SDK waits to retry its 409.
    finisher = threading.Timer(0.3, finish_claim, (server, store_kind, key, stored.id))
    finisher.start()
    retrying = anthropic.Anthropic(base_url=server.base_url, api_key="sk-test-key", max_retries=4)
    replayed = create(retrying, key, run)
    finisher.join()
    assert replayed.status_code == 200 and replayed.json()["id"] == stored.id
    assert replayed.headers["idempotent-replayed"] == "true"


def test_a_client_timing_out_on_a_large_create_and_retrying_ends_with_one_batch(
    start_on_store: Callable[..., Server],
) -> None:
    server = start_on_store()
    run, key = uuid.uuid4().hex, str(uuid.uuid4())
    big = "x" * 20_000
    requests = [simple_request(f"r{i}", big) for i in range(1500)]  # ~30 MB
    impatient = anthropic.Anthropic(
        base_url=server.base_url, api_key="sk-test-key", max_retries=3, timeout=0.05
    )
    try:
        first: anthropic.types.messages.MessageBatch | None = impatient.messages.batches.create(
            requests=requests,  # type: ignore[arg-type]
            extra_body={"metadata": {"run": run}},
            extra_headers={"Idempotency-Key": key},
        )
    except anthropic.APITimeoutError:
        first = None  # every try timed out: each one stored, refused, or still storing
    patient = anthropic.Anthropic(base_url=server.base_url, api_key="sk-test-key", max_retries=8)
    batch = patient.messages.batches.create(
        requests=requests,  # type: ignore[arg-type]
        extra_body={"metadata": {"run": run}},
        extra_headers={"Idempotency-Key": key},
    )
    assert first is None or first.id == batch.id
    assert labeled_batches(patient, run) == [batch.id]
    creates = [
        orjson.loads(line)
        for line in server.log.read_text().splitlines()
        if "POST /v1/messages/batches " in line
    ]
    # The first try outlasted its client, which retried: still one batch.
    assert creates[0]["duration_ms"] > 50 and len(creates) >= 2
    assert server.log.read_text().count('"batch created"') == 1


def test_a_key_too_long_is_400(start_on_store: Callable[..., Server]) -> None:
    client = start_on_store().client()
    with pytest.raises(anthropic.BadRequestError, match="Idempotency-Key"):
        create(client, "k" * 256, "run")
