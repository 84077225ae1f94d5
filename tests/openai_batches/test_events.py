"""OpenAI batches' events (docs/events.md): a webhook subscribed by OpenAI's names gets
batch.completed, batch.cancelled and batch.failed (a batch whose file fails validation), shaped
and signed as OpenAI's batch webhooks are, and none of the Message Batches' events; the workspace
stream shows them; the Message Batches' stream does not know OpenAI batches; batch.expired when
its window passes."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai

from conftest import KEY, Server
from events.receiver import Receiver, verified
from events.sse import messages, stream
from openai_batches.conftest import chat_line, openai_client, wait_until_done, write_jsonl

OPENAI_TYPES = ["batch.completed", "batch.failed", "batch.expired", "batch.cancelled"]
SETTINGS = {"webhook_allow_private_addresses": "1", "webhook_retry_scale": "0.0005"}


def api(server: Server, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(
        method, f"{server.base_url}{path}", headers={"x-api-key": KEY}, timeout=30, **kwargs
    )


def create_batch(client: openai.OpenAI, path: Path, lines: list[dict[str, Any]]) -> str:
    with write_jsonl(path, lines).open("rb") as upload:
        input_file = client.files.create(file=upload, purpose="batch")
    return client.batches.create(
        input_file_id=input_file.id, endpoint="/v1/chat/completions", completion_window="24h"
    ).id


def test_openai_batches_send_openai_webhook_events(
    tmp_path: Path, start_on_store: Callable[..., Server]
) -> None:
    receiver = Receiver().start()
    server = start_on_store(simulator_latency_ms="100", max_concurrency="2", **SETTINGS)
    client = openai_client(server)
    response = api(
        server,
        "POST",
        "/v1/webhooks",
        json={"url": receiver.url, "event_types": [*OPENAI_TYPES, "batch.created", "batch.ended"]},
    )
    assert response.status_code == 200, response.text
    secret = response.json()["secret"]

    completed = create_batch(client, tmp_path / "a.jsonl", [chat_line("r1", "Hi")])
    cancelled = create_batch(
        client, tmp_path / "b.jsonl", [chat_line(f"r{i}", "Hi") for i in range(40)]
    )
    client.batches.cancel(cancelled)
    failed = create_batch(
        client, tmp_path / "c.jsonl", [chat_line("same", "Hi"), chat_line("same", "Hi")]
    )
    assert client.batches.retrieve(failed).status == "failed"
    assert wait_until_done(client, completed).status == "completed"
    assert wait_until_done(client, cancelled).status == "cancelled"

    calls = receiver.wait_for(lambda calls: len(calls) >= 3)
    expected = {completed: "batch.completed", cancelled: "batch.cancelled", failed: "batch.failed"}
    received = {}
    for call in calls:
        payload = verified(call, secret)
        assert set(payload) == {"id", "object", "type", "created_at", "data"}
        assert payload["object"] == "event" and payload["id"] == call.headers["webhook-id"]
        assert isinstance(payload["created_at"], int)
        # The SDK's own webhook helper verifies and parses it as OpenAI's batch event.
        event = client.webhooks.unwrap(call.body, call.headers, secret=secret)
        assert event.type == payload["type"] and event.data.id == payload["data"]["id"]
        received[payload["data"]["id"]] = payload["type"]
    assert received == expected
    # The Message Batches' events (batch.created, batch.ended) are not an OpenAI batch's.
    deliveries = api(server, "GET", f"/v1/webhooks/{response.json()['id']}/deliveries").json()
    assert len(deliveries["data"]) == 3

    events = stream(server.base_url, "/v1/events", last_event_id=0, read_timeout=10)
    seen = []
    try:
        for message in messages(events):
            seen.append((message.event, message.data["data"]))
            if len(seen) == 3:
                break
    finally:
        events.close()
    assert sorted(seen) == sorted((kind, {"id": batch}) for batch, kind in expected.items())

    for batch_id in (completed, failed):
        assert api(server, "GET", f"/v1/messages/batches/{batch_id}/events").status_code == 404
    receiver.stop()


def test_an_openai_batch_past_its_window_sends_batch_expired(
    tmp_path: Path, start_on_store: Callable[..., Server]
) -> None:
    receiver = Receiver().start()
    server = start_on_store(
        expiry_seconds="1", simulator_latency_ms="300", max_concurrency="1", **SETTINGS
    )
    client = openai_client(server)
    response = api(
        server, "POST", "/v1/webhooks", json={"url": receiver.url, "event_types": OPENAI_TYPES}
    )
    secret = response.json()["secret"]
    expiring = create_batch(
        client, tmp_path / "in.jsonl", [chat_line(f"r{i}", "Hi") for i in range(20)]
    )
    assert wait_until_done(client, expiring, timeout=30).status == "expired"

    [call] = receiver.wait_for(lambda calls: len(calls) >= 1)
    event = client.webhooks.unwrap(call.body, call.headers, secret=secret)
    assert (event.type, event.data.id) == ("batch.expired", expiring)
    receiver.stop()


def test_webhooks_subscribe_only_to_known_event_names(start_server: Callable[..., Server]) -> None:
    server = start_server(**SETTINGS)
    response = api(
        server,
        "POST",
        "/v1/webhooks",
        json={"url": "http://127.0.0.1:9/hook", "event_types": ["batch.finished"]},
    )
    assert response.status_code == 400
    assert "batch.cancelled" in response.json()["error"]["message"]
