"""The event streams on a real server (docs/events.md): a batch's events from created to
ended, resumed exactly with Last-Event-ID after a dropped connection, the workspace's stream,
and nothing of another workspace's."""

import itertools
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from conftest import Server, simple_request, wait_until_ended
from events.sse import Message, messages, read_all, stream

# Two requests at a time, 0.3 s each: ten requests commit parts over 1.5 s.
SLOW = {
    "simulator_latency_ms": "300",
    "max_concurrency": "2",
    "chunk_size": "2",
    "flush_seconds": "0.05",
}


def create(server: Server, count: int, key: str = "sk-test-key") -> str:
    return (
        server.client(key)
        .messages.batches.create(
            requests=[simple_request(f"r{i}") for i in range(count)]  # type: ignore[misc]
        )
        .id
    )


def test_a_batch_s_stream_runs_from_created_to_ended_then_ends(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(**SLOW)
    batch_id = create(server, 10)
    response = stream(server.base_url, f"/v1/messages/batches/{batch_id}/events")
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-store"
    found = list(messages(response))
    response.close()
    types = [message.event for message in found]
    assert types[0] == "batch.created" and types[-1] == "batch.ended"
    assert set(types[1:-1]) == {"batch.progress"}, types
    assert [message.id for message in found] == sorted(message.id for message in found)
    sequences = [message.data["sequence"] for message in found]
    assert sequences == list(range(1, len(found) + 1))
    succeeded = [message.data["data"]["request_counts"]["succeeded"] for message in found]
    assert succeeded == sorted(succeeded) and succeeded[-1] == 10
    ended = found[-1].data
    assert ended["data"]["reason"] == "completed" and ended["data"]["id"] == batch_id
    assert ended["data"]["usage"]["output_tokens"] > 0
    # Progress at most once a second.
    progress_times = [m.data["created_at"] for m in found if m.event == "batch.progress"]
    assert len(progress_times) == len(set(progress_times))
    # Once ended, the stream gives the whole history again and ends at once.
    assert read_all(server.base_url, f"/v1/messages/batches/{batch_id}/events") == found


def test_resuming_with_last_event_id_gives_exactly_the_missed_events(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(**SLOW)
    batch_id = create(server, 16)
    path = f"/v1/messages/batches/{batch_id}/events"
    response = stream(server.base_url, path)
    seen = list(itertools.islice(messages(response), 2))
    response.close()  # the connection drops mid-batch
    time.sleep(0.5)
    rest = read_all(server.base_url, path, last_event_id=seen[-1].id)
    whole = read_all(server.base_url, path)
    assert seen + rest == whole
    assert whole[-1].event == "batch.ended"
    # Resuming after the end: nothing more, and the stream ends.
    assert read_all(server.base_url, path, last_event_id=whole[-1].id) == []


def test_the_workspace_stream_follows_every_batch_and_another_workspace_sees_none(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(api_keys="key-alice,key-bob", **SLOW)
    heard: dict[str, list[Message]] = {"key-alice": [], "key-bob": []}
    responses: list[httpx.Response] = []

    def listen(key: str) -> None:
        response = stream(server.base_url, "/v1/events", key=key)
        responses.append(response)
        try:
            for message in messages(response):
                heard[key].append(message)
        except httpx.HTTPError:
            pass  # closed by the test

    listeners = [threading.Thread(target=listen, args=(key,)) for key in heard]
    for listener in listeners:
        listener.start()
    time.sleep(0.5)
    first = create(server, 2, "key-alice")
    second = create(server, 2, "key-alice")
    for batch_id in (first, second):
        wait_until_ended(server.client("key-alice"), batch_id)
    deadline = time.monotonic() + 10
    while sum(m.event == "batch.ended" for m in heard["key-alice"]) < 2:
        assert time.monotonic() < deadline, heard
        time.sleep(0.05)
    for response in responses:
        response.close()
    for listener in listeners:
        listener.join(5)
    alice = heard["key-alice"]
    assert {m.data["data"]["id"] for m in alice} == {first, second}
    assert [m.id for m in alice] == sorted(m.id for m in alice)
    assert heard["key-bob"] == []
    # Bob cannot open Alice's batch's stream, nor resume hers by number.
    bob = stream(server.base_url, f"/v1/messages/batches/{first}/events", key="key-bob")
    assert bob.status_code == 404 and bob.read()
    assert read_all(server.base_url, f"/v1/messages/batches/{first}/events", 0, "key-alice")
    bob_resume = stream(
        server.base_url, "/v1/events", last_event_id=0, key="key-bob", read_timeout=1
    )
    try:
        assert bob_resume.status_code == 200
        # Alice's events, were they Bob's, would come at once after the retry hint.
        with pytest.raises(httpx.ReadTimeout):
            assert list(bob_resume.iter_lines()) == ["retry: 2000", ""]
    finally:
        bob_resume.close()
    alice_resume = stream(server.base_url, "/v1/events", last_event_id=0, key="key-alice")
    try:
        assert next(messages(alice_resume)).data["data"]["id"] == first
    finally:
        alice_resume.close()


def test_a_bad_last_event_id_is_a_400(start_server: Callable[..., Server]) -> None:
    server = start_server()
    response = httpx.get(
        f"{server.base_url}/v1/events",
        headers={"x-api-key": "k", "last-event-id": "yesterday"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
