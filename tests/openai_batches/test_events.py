"""OpenAI batches' events (docs/events.md): a webhook subscribed by OpenAI's names gets
batch.completed, batch.cancelled and batch.failed (a batch whose file fails validation), shaped
and signed as OpenAI's batch webhooks are, and none of the Message Batches' events; the workspace
stream shows them; the Message Batches' stream does not know OpenAI batches; batch.expired when
its window passes. Their batch.progress (our extension) on the batch's own stream and to webhooks,
with the Batch object's counts."""

from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest

from conftest import KEY, Server
from events.receiver import Receiver, verified
from events.sse import messages, stream
from openai_batches.conftest import (
    chat_line,
    create_chat_batch,
    openai_client,
    wait_until_done,
)

OPENAI_TYPES = ["batch.completed", "batch.failed", "batch.expired", "batch.cancelled"]
SETTINGS = {"webhook_allow_private_addresses": "1", "webhook_retry_scale": "0.0005"}


def api(server: Server, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(
        method, f"{server.base_url}{path}", headers={"x-api-key": KEY}, timeout=30, **kwargs
    )


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

    completed = create_chat_batch(client, tmp_path / "a.jsonl", [chat_line("r1", "Hi")]).id
    cancelled = create_chat_batch(
        client, tmp_path / "b.jsonl", [chat_line(f"r{i}", "Hi") for i in range(40)]
    ).id
    client.batches.cancel(cancelled)
    failed = create_chat_batch(
        client, tmp_path / "c.jsonl", [chat_line("same", "Hi"), chat_line("same", "Hi")]
    ).id
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
            if message.event != "batch.progress":
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
    expiring = create_chat_batch(
        client, tmp_path / "in.jsonl", [chat_line(f"r{i}", "Hi") for i in range(20)]
    ).id
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


def _sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    """The (event type, event object) of each message of a whole Server-Sent Events body."""
    found = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in fields:
            found.append((fields["event"], orjson.loads(fields["data"])))
    return found


def test_an_openai_batch_streams_and_sends_its_progress(
    tmp_path: Path, start_on_store: Callable[..., Server]
) -> None:
    receiver = Receiver().start()
    server = start_on_store(simulator_latency_ms="100", max_concurrency="4", **SETTINGS)
    client = openai_client(server)
    response = api(
        server,
        "POST",
        "/v1/webhooks",
        json={"url": receiver.url, "event_types": ["batch.progress", "batch.completed"]},
    )
    secret = response.json()["secret"]
    batch_id = create_chat_batch(
        client, tmp_path / "in.jsonl", [chat_line(f"r{i}", "Hi") for i in range(100)]
    ).id

    # The batch's own stream, read whole with the SDK: it ends after the batch's end.
    answer = client.get(
        f"/batches/{batch_id}/events", cast_to=httpx.Response, options={"timeout": 60}
    )
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = _sse(answer.text)
    *progress, (last_type, last) = events
    assert (last_type, last["type"], last["data"]) == (
        "batch.completed",
        "batch.completed",
        {"id": batch_id},
    )
    assert len(progress) >= 2, events
    done = []
    for kind, event in progress:
        assert kind == event["type"] == "batch.progress"
        data = event["data"]
        assert set(data) == {"id", "object", "status", "request_counts"}
        assert (data["id"], data["object"], data["status"]) == (batch_id, "batch", "in_progress")
        counts = data["request_counts"]
        assert counts["total"] == 100 and counts["completed"] + counts["failed"] < 100
        done.append(counts["completed"] + counts["failed"])
    assert done == sorted(done) and done[-1] > done[0]
    # At most one a second.
    moments = [datetime.fromisoformat(event["created_at"]) for _, event in progress]
    assert all(later - earlier >= timedelta(seconds=0.99) for earlier, later in pairwise(moments))
    ended = client.batches.retrieve(batch_id)
    assert ended.status == "completed" and ended.request_counts is not None

    calls = receiver.wait_for(
        lambda calls: any(orjson.loads(call.body)["type"] == "batch.completed" for call in calls)
    )
    sent = {}
    for call in calls:
        client.webhooks.verify_signature(call.body, call.headers, secret=secret)
        payload = verified(call, secret)
        assert set(payload) == {"id", "object", "type", "created_at", "data"}
        sent[payload["id"]] = (payload["type"], payload["data"])
        if payload["type"] == "batch.completed":
            # The end event, as before, is OpenAI's: the SDK reads it.
            end = client.webhooks.unwrap(call.body, call.headers, secret=secret)
            assert (end.type, end.data.id) == ("batch.completed", batch_id)
    assert sent == {event["id"]: (event["type"], event["data"]) for _, event in events}

    # Streamed again once ended: the same events, and the stream ends.
    again = client.get(f"/batches/{batch_id}/events", cast_to=httpx.Response)
    assert [event for _, event in _sse(again.text)] == [event for _, event in events]
    receiver.stop()


def test_a_failed_openai_batchs_stream_is_its_failure_and_others_are_404(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    client = openai_client(start_server())
    failed = create_chat_batch(
        client, tmp_path / "in.jsonl", [chat_line("same", "Hi"), chat_line("same", "Hi")]
    ).id
    answer = client.get(f"/batches/{failed}/events", cast_to=httpx.Response)
    assert [(kind, event["data"]) for kind, event in _sse(answer.text)] == [
        ("batch.failed", {"id": failed})
    ]
    with pytest.raises(openai.NotFoundError):
        client.get("/batches/batch_nothing/events", cast_to=httpx.Response)
