"""Webhooks on PostgreSQL with two workers: each event is delivered, at least once and in
practice once, whichever worker takes it; events stream from the API process as workers write
them."""

import contextlib
import threading
import time
from collections import Counter

import httpx

from conftest import Cluster, simple_request, wait_until_ended
from events.receiver import Receiver, verified
from events.sse import Message, messages, read_all, stream
from events.test_webhooks import EVERY_TYPE, FAST_RETRIES, add_webhook


def test_two_workers_deliver_each_event(cluster: Cluster) -> None:
    receiver = Receiver(answer=lambda n: 503 if n % 3 == 0 else 200).start()
    api = cluster.start_api(chunk_size="5", **FAST_RETRIES)
    for _ in range(2):
        cluster.start_worker(
            simulator_latency_ms="50", max_concurrency="4", chunk_size="5", **FAST_RETRIES
        )
    webhook = add_webhook(api, receiver.url, EVERY_TYPE)
    # The API process streams what the workers write, woken by NOTIFY.
    live = stream(api.base_url, "/v1/events")
    heard: list[Message] = []
    listener = threading.Thread(target=lambda: _listen(live, heard), daemon=True)
    listener.start()
    client = api.client()
    ids = [
        client.messages.batches.create(
            requests=[simple_request(f"r{i}") for i in range(20)]  # type: ignore[misc]
        ).id
        for _ in range(4)
    ]
    for batch_id in ids:
        wait_until_ended(client, batch_id)
    expected = {
        message.data["id"]
        for batch_id in ids
        for message in read_all(api.base_url, f"/v1/messages/batches/{batch_id}/events")
    }
    assert len(expected) >= 8
    delivered = receiver.wait_for(
        lambda calls: {call.headers["webhook-id"] for call in calls} >= expected
    )
    times = Counter(call.headers["webhook-id"] for call in delivered)
    assert set(times) == expected
    assert max(times.values()) == 1, times.most_common(3)
    for call in delivered:
        verified(call, webhook["secret"])
    deadline = time.monotonic() + 10
    while {m.data["id"] for m in heard} < expected:
        assert time.monotonic() < deadline, "the live stream missed events"
        time.sleep(0.05)
    live.close()
    assert [m.id for m in heard] == sorted(m.id for m in heard)
    receiver.stop()


def _listen(response: httpx.Response, heard: list[Message]) -> None:
    with contextlib.suppress(httpx.HTTPError):
        heard.extend(messages(response))


def test_a_delivery_whose_worker_is_killed_mid_attempt_is_taken_over_at_once(
    cluster: Cluster,
) -> None:
    """Not when its minute's lease lapses: the worker's lock is gone with it (as for chunks)."""
    # The first call never answers in time for its worker (killed meanwhile): not a delivery.
    receiver = Receiver(
        answer=lambda n: 500 if n == 0 else 204, stall=lambda n: 8.0 if n == 0 else 0.0
    ).start()
    api = cluster.start_api(**FAST_RETRIES)
    first_worker = cluster.start_worker(**FAST_RETRIES)
    webhook = add_webhook(api, receiver.url, ["batch.created"])
    api.client().messages.batches.create(requests=[simple_request("r")])  # type: ignore[list-item]
    deadline = time.monotonic() + 10
    while not receiver.calls:  # the attempt stalls in the receiver
        assert time.monotonic() < deadline
        time.sleep(0.02)
    first_worker.kill()
    killed_at = time.monotonic()
    cluster.start_worker(**FAST_RETRIES)
    [delivered] = receiver.wait_for(lambda calls: len(calls) == 1, timeout=30)
    assert time.monotonic() - killed_at < 15
    assert len(receiver.calls) == 2
    assert delivered.headers["webhook-id"] == receiver.calls[0].headers["webhook-id"]
    verified(delivered, webhook["secret"])
    receiver.stop()
