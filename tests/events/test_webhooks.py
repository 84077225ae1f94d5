"""Webhooks on a real server (docs/events.md): every event arrives at least once however the
receiver misbehaves, signed by Standard Webhooks' rules; the endpoints' API, its safety rules
and the delivery log."""

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import KEY, Server, simple_request, wait_until_ended
from events.receiver import Call, Receiver, verified
from events.sse import read_all
from key_commands import create_key

# The retry schedule 2000 times faster: 2.5 ms, 0.15 s, 0.9 s, 3.6 s, 9 s, ...
FAST_RETRIES = {"webhook_allow_private_addresses": "1", "webhook_retry_scale": "0.0005"}
EVERY_TYPE = ["batch.created", "batch.progress", "batch.canceling", "batch.ended"]


def api(server: Server, method: str, path: str, key: str = KEY, **kwargs: Any) -> httpx.Response:
    return httpx.request(
        method, f"{server.base_url}{path}", headers={"x-api-key": key}, timeout=30, **kwargs
    )


def add_webhook(
    server: Server, url: str, types: list[str] = EVERY_TYPE, key: str = KEY
) -> dict[str, Any]:
    response = api(server, "POST", "/v1/webhooks", key, json={"url": url, "event_types": types})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def create(server: Server, count: int, key: str = KEY, **extra: Any) -> str:
    return (
        server.client(key)
        .messages.batches.create(
            requests=[simple_request(f"r{i}") for i in range(count)],  # type: ignore[misc]
            extra_body=extra or None,
        )
        .id
    )


def event_ids(server: Server, batch_ids: list[str], key: str = KEY) -> set[str]:
    """Every event of the batches (their streams end with batch.ended)."""
    return {
        message.data["id"]
        for batch_id in batch_ids
        for message in read_all(server.base_url, f"/v1/messages/batches/{batch_id}/events", key=key)
    }


def all_arrived(expected: set[str]) -> Callable[[list[Call]], bool]:
    return lambda calls: {call.headers["webhook-id"] for call in calls} >= expected


def test_a_receiver_failing_half_its_calls_and_down_a_while_gets_every_event(
    start_server: Callable[..., Server],
) -> None:
    receiver = Receiver(answer=lambda n: 500 if n % 2 else 200).start()
    server = start_server(
        simulator_latency_ms="100", max_concurrency="4", chunk_size="4", **FAST_RETRIES
    )
    webhook = add_webhook(server, receiver.url)
    assert webhook["secret"].startswith("whsec_") and webhook["event_types"] == EVERY_TYPE
    first = create(server, 20)
    receiver.stop()  # down while the batch runs and another is created
    second = create(server, 8)
    wait_until_ended(server.client(), first)
    receiver.start()
    wait_until_ended(server.client(), second)
    expected = event_ids(server, [first, second])
    delivered = receiver.wait_for(all_arrived(expected))
    payloads = {}
    for call in delivered:
        payload = verified(call, webhook["secret"])
        payloads.setdefault(call.headers["webhook-id"], payload)
        assert call.headers["content-type"] == "application/json"
    assert set(payloads) == expected
    assert {p["type"] for p in payloads.values()} >= {"batch.created", "batch.ended"}
    ended = [p for p in payloads.values() if p["type"] == "batch.ended"]
    assert sorted(p["data"]["id"] for p in ended) == sorted([first, second])
    assert all(p["data"]["processing_status"] == "ended" for p in ended)
    assert {p["data"]["request_counts"]["succeeded"] for p in ended} == {20, 8}
    # Failed attempts were retried: the receiver saw 5xx, and the log says so.
    assert any(call.status == 500 for call in receiver.calls)
    log = api(server, "GET", f"/v1/webhooks/{webhook['id']}/deliveries?limit=1000").json()
    assert {d["state"] for d in log["data"]} == {"delivered"}
    retried = [d for d in log["data"] if d["attempts"] > 1]
    assert retried and all(d["attempt_log"][-1]["status_code"] == 200 for d in retried)
    assert any(
        "error" in a or a.get("status_code") == 500 for d in retried for a in d["attempt_log"]
    )
    exposition = httpx.get(f"{server.base_url}/metrics").text
    for outcome in ("delivered", "retry"):
        assert f'batchgate_webhook_attempts_total{{outcome="{outcome}"}}' in exposition
    receiver.stop()


def test_kill_9_with_deliveries_pending_then_restart_loses_none(
    start_server: Callable[..., Server],
) -> None:
    receiver = Receiver()  # not started yet: every delivery fails and waits for a retry
    server = start_server(simulator_latency_ms="20", **FAST_RETRIES)
    webhook = add_webhook(server, receiver.url, ["batch.created", "batch.ended"])
    ids = [create(server, 5) for _ in range(3)]
    for batch_id in ids:
        wait_until_ended(server.client(), batch_id)
    server.kill()
    receiver.start()
    server.start()
    expected = event_ids(server, ids)
    assert len(expected) == 6
    delivered = receiver.wait_for(all_arrived(expected))
    for call in delivered:
        verified(call, webhook["secret"])
    receiver.stop()


def test_a_rotated_secret_signs_beside_the_old_one_and_410_disables(
    start_server: Callable[..., Server],
) -> None:
    receiver = Receiver().start()
    server = start_server(**FAST_RETRIES)
    webhook = add_webhook(server, receiver.url, ["batch.created"])
    rotated = api(server, "POST", f"/v1/webhooks/{webhook['id']}/rotate_secret").json()
    assert rotated["secret"] != webhook["secret"] and rotated["id"] == webhook["id"]
    create(server, 1)
    [call] = receiver.wait_for(lambda calls: len(calls) == 1)
    assert len(call.headers["webhook-signature"].split(" ")) == 2
    assert verified(call, rotated["secret"]) == verified(call, webhook["secret"])
    # Lists never show a secret.
    [listed] = api(server, "GET", "/v1/webhooks").json()["data"]
    assert "secret" not in listed and listed["url"] == receiver.url
    receiver.answer = lambda _: 410
    create(server, 1)
    deadline = time.monotonic() + 10
    while (listed := api(server, "GET", "/v1/webhooks").json()["data"][0])["disabled_at"] is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert "410" in listed["disabled_reason"]
    # Disabled: no more calls.
    create(server, 1)
    time.sleep(0.5)
    assert len(receiver.calls) == 2
    receiver.stop()


def test_a_batch_s_own_webhook_url_is_signed_with_the_workspace_secret(
    start_server: Callable[..., Server],
) -> None:
    receiver = Receiver().start()
    server = start_server(**FAST_RETRIES)
    batch_id = create(server, 2, webhook_url=receiver.url)
    wait_until_ended(server.client(), batch_id)
    secret = api(server, "POST", "/v1/webhooks/workspace_secret").json()["secret"]
    calls = receiver.wait_for(lambda calls: any(c.payload["type"] == "batch.ended" for c in calls))
    assert {verified(call, secret)["data"]["id"] for call in calls} == {batch_id}
    receiver.stop()


def test_a_retry_delivers_to_its_parent_s_webhook_url(
    start_server: Callable[..., Server],
) -> None:
    receiver = Receiver().start()
    server = start_server(simulator_fault_rate="0.5", **FAST_RETRIES)
    parent = create(server, 20, webhook_url=receiver.url)
    wait_until_ended(server.client(), parent)
    response = api(server, "POST", f"/v1/messages/batches/{parent}/retry")
    assert response.status_code == 200, response.text
    retry = response.json()["id"]
    wait_until_ended(server.client(), retry)
    calls = receiver.wait_for(
        lambda calls: (
            {c.payload["data"]["id"] for c in calls if c.payload["type"] == "batch.ended"}
            == {parent, retry}
        )
    )
    assert {call.payload["data"]["id"] for call in calls} == {parent, retry}
    receiver.stop()


def test_redirects_are_not_followed_and_deliveries_can_be_redelivered(
    start_server: Callable[..., Server],
) -> None:
    receiver = Receiver(answer=lambda n: 302 if n == 0 else 200).start()
    server = start_server(**FAST_RETRIES)
    webhook = add_webhook(server, receiver.url, ["batch.created"])
    create(server, 1)
    path = f"/v1/webhooks/{webhook['id']}/deliveries"
    deadline = time.monotonic() + 10
    while (log := api(server, "GET", path).json()["data"]) == [] or log[0]["state"] == "pending":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    [failed] = log
    assert failed["state"] == "failed" and failed["attempt_log"][0]["status_code"] == 302
    assert [call.path for call in receiver.calls] == ["/hook"]  # the Location never visited
    again = api(server, "POST", f"{path}/{failed['id']}/redeliver")
    assert again.status_code == 200, again.text
    [call] = receiver.wait_for(lambda calls: len(calls) == 1)
    assert call.headers["webhook-id"] == receiver.calls[0].headers["webhook-id"]
    assert api(server, "POST", f"{path}/whdlv_999999/redeliver").status_code == 404
    receiver.stop()


def test_webhook_safety_and_workspaces(start_server: Callable[..., Server]) -> None:
    server = start_server(api_keys="key-alice,key-bob")
    for url in ("http://127.0.0.1:9/hook", "http://localhost/x", "http://169.254.169.254/",
                "http://10.1.2.3/", "http://[::1]/"):  # fmt: skip
        refused = api(server, "POST", "/v1/webhooks", "key-alice",
                      json={"url": url, "event_types": ["batch.ended"]})  # fmt: skip
        assert refused.status_code == 400, url
        assert "private" in refused.json()["error"]["message"]
    for body in ({"url": "ftp://example.com", "event_types": ["batch.ended"]},
                 {"url": "https://example.com", "event_types": ["batch.exploded"]},
                 {"url": "https://example.com", "event_types": []},
                 {"url": "https://example.com"}):  # fmt: skip
        assert api(server, "POST", "/v1/webhooks", "key-alice", json=body).status_code == 400
    refused_batch = server.client("key-alice").messages.batches.with_raw_response
    with pytest.raises(Exception, match="webhook_url"):
        refused_batch.create(
            requests=[simple_request("r")],  # type: ignore[list-item]
            extra_body={"webhook_url": "http://127.0.0.1/hook"},
        )
    assert api(server, "GET", "/v1/webhooks/wh_nope/deliveries", "key-alice").status_code == 404
    assert api(server, "DELETE", "/v1/webhooks/wh_nope", "key-alice").status_code == 404


def test_another_workspace_sees_and_touches_none_of_the_webhooks(
    start_server: Callable[..., Server],
) -> None:
    receiver = Receiver().start()
    server = start_server(api_keys="key-alice,key-bob", **FAST_RETRIES)
    webhook = add_webhook(server, receiver.url, ["batch.created"], key="key-alice")
    create(server, 1, key="key-bob")
    create(server, 1, key="key-alice")
    [call] = receiver.wait_for(lambda calls: len(calls) == 1)
    assert call.payload["data"]["id"] in {
        b.id for b in server.client("key-alice").messages.batches.list()
    }
    assert api(server, "GET", "/v1/webhooks", "key-bob").json()["data"] == []
    hook = f"/v1/webhooks/{webhook['id']}"
    assert api(server, "DELETE", hook, "key-bob").status_code == 404
    assert api(server, "POST", f"{hook}/rotate_secret", "key-bob").status_code == 404
    assert api(server, "GET", f"{hook}/deliveries", "key-bob").status_code == 404
    assert api(server, "DELETE", hook, "key-alice").status_code == 200
    assert api(server, "GET", "/v1/webhooks", "key-alice").json()["data"] == []
    receiver.stop()


def test_a_read_only_key_sees_webhooks_but_changes_none(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    url = f"sqlite:///{tmp_path / 'batchgate.db'}"
    writer, reader = create_key(url, "blue"), create_key(url, "blue", read_only=True)
    server = start_server(database_url=url, webhook_allow_private_addresses="1")
    webhook = add_webhook(server, "http://127.0.0.1:9/hook", key=writer.key)
    hook = f"/v1/webhooks/{webhook['id']}"
    assert [w["id"] for w in api(server, "GET", "/v1/webhooks", reader.key).json()["data"]] == [
        webhook["id"]
    ]
    assert api(server, "GET", f"{hook}/deliveries", reader.key).status_code == 200
    for method, path, body in (
        ("POST", "/v1/webhooks", {"url": "http://127.0.0.1:9/x", "event_types": EVERY_TYPE}),
        ("DELETE", hook, None),
        ("POST", f"{hook}/rotate_secret", None),
        ("POST", "/v1/webhooks/workspace_secret", None),
        ("POST", f"{hook}/deliveries/whdlv_1/redeliver", None),
    ):
        refused = api(server, method, path, reader.key, json=body)
        assert refused.status_code == 403, path
        assert refused.json()["error"]["type"] == "permission_error"
