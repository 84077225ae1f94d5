"""How a batch moves through its states: live counts, cancel, expiry, retention, bad params."""

import time
from collections.abc import Callable

import anthropic
import httpx
import orjson
import pytest

from conftest import KEY, Server, simple_request, wait_until_ended, wait_until_in_flight


def results_by_id(client: anthropic.Anthropic, batch_id: str) -> dict[str, object]:
    found: dict[str, object] = {}
    for response in client.messages.batches.results(batch_id):
        assert response.custom_id not in found, f"{response.custom_id} twice"
        found[response.custom_id] = response.result
    return found


def test_counts_are_live_and_always_sum_to_the_total(start_server: Callable[..., Server]) -> None:
    slow = start_server(simulator_latency_ms="50", max_concurrency="10", flush_seconds="0.1")
    client = slow.client()
    batch = client.messages.batches.create(requests=[simple_request(f"r{i}") for i in range(200)])  # type: ignore[misc]
    seen_partial = False
    while batch.processing_status != "ended":
        counts = batch.request_counts
        total = (
            counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired
        )
        assert total == 200
        seen_partial |= 0 < counts.succeeded < 200
        time.sleep(0.05)
        batch = client.messages.batches.retrieve(batch.id)
    assert seen_partial, "counts moved only at the end"
    assert batch.request_counts.succeeded == 200
    assert batch.ended_at is not None and batch.results_url is not None


def test_invalid_params_error_only_their_own_request(server: Server) -> None:
    client = server.client()
    good = simple_request("good")
    bad = {
        "no-max-tokens": {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        "zero-max-tokens": {
            "model": "m",
            "max_tokens": 0,
            "messages": [{"role": "user", "content": "hi"}],
        },
        "streaming": {
            "model": "m",
            "max_tokens": 5,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        },
        "no-messages": {"model": "m", "max_tokens": 5, "messages": []},
        "bad-role": {
            "model": "m",
            "max_tokens": 5,
            "messages": [{"role": "robot", "content": "hi"}],
        },
        "bad-block": {
            "model": "m",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": [{"type": "nope"}]}],
        },
    }
    batch = client.messages.batches.create(
        requests=[good, *({"custom_id": cid, "params": params} for cid, params in bad.items())]  # type: ignore[list-item]
    )
    batch = wait_until_ended(client, batch.id)
    assert batch.request_counts.succeeded == 1
    assert batch.request_counts.errored == len(bad)
    found = results_by_id(client, batch.id)
    assert found["good"].type == "succeeded"  # type: ignore[attr-defined]
    expected_field = {
        "no-max-tokens": "max_tokens",
        "zero-max-tokens": "max_tokens",
        "streaming": "stream",
        "no-messages": "messages",
        "bad-role": "messages.0.role",
        "bad-block": "messages.0.content.0",
    }
    for custom_id, field in expected_field.items():
        result = found[custom_id]
        assert result.type == "errored"  # type: ignore[attr-defined]
        assert result.error.error.type == "invalid_request_error"  # type: ignore[attr-defined]
        assert field in result.error.error.message, (custom_id, result.error.error.message)  # type: ignore[attr-defined]


def test_simulator_honours_max_tokens_and_stop_sequences(server: Server) -> None:
    client = server.client()
    long_prompt = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda"
    batch = client.messages.batches.create(
        requests=[
            simple_request("short", long_prompt, max_tokens=3),  # type: ignore[list-item]
            simple_request("stop", long_prompt, stop_sequences=["theta"]),  # type: ignore[list-item]
            simple_request("again", long_prompt, stop_sequences=["theta"]),  # type: ignore[list-item]
        ]
    )
    wait_until_ended(client, batch.id)
    found = results_by_id(client, batch.id)
    short = found["short"].message  # type: ignore[attr-defined]
    assert short.stop_reason == "max_tokens" and short.usage.output_tokens <= 3
    stop = found["stop"].message  # type: ignore[attr-defined]
    assert stop.stop_reason == "stop_sequence" and stop.stop_sequence == "theta"
    assert "theta" not in stop.content[0].text
    assert stop.usage.service_tier == "batch"
    again = found["again"].message  # type: ignore[attr-defined]
    assert again.content == stop.content, "the simulator is deterministic for the same params"


def test_cancel_stops_unstarted_requests(start_server: Callable[..., Server]) -> None:
    # Calls take a second: the batch is still canceling, its first 5 calls in flight, when the
    # second cancel arrives (unstarted requests are settled in the same instant).
    slow = start_server(simulator_latency_ms="1000", max_concurrency="5")
    client = slow.client()
    batch = client.messages.batches.create(requests=[simple_request(f"r{i}") for i in range(300)])  # type: ignore[misc]
    wait_until_in_flight(slow, at_least=5)
    canceling = client.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling"
    again = client.messages.batches.cancel(batch.id)
    assert again.cancel_initiated_at == canceling.cancel_initiated_at
    started = time.monotonic()
    batch = wait_until_ended(client, batch.id)
    assert time.monotonic() - started < 5
    counts = batch.request_counts
    assert counts.canceled > 200 and counts.succeeded >= 5
    assert counts.succeeded + counts.canceled == 300
    found = results_by_id(client, batch.id)
    assert len(found) == 300
    assert sum(result.type == "canceled" for result in found.values()) == counts.canceled  # type: ignore[attr-defined]


def test_unfinished_requests_expire(start_server: Callable[..., Server]) -> None:
    slow = start_server(simulator_latency_ms="100", max_concurrency="2", expiry_seconds="1.5")
    client = slow.client()
    batch = client.messages.batches.create(requests=[simple_request(f"r{i}") for i in range(200)])  # type: ignore[misc]
    assert (batch.expires_at - batch.created_at).total_seconds() == pytest.approx(1.5)
    batch = wait_until_ended(client, batch.id, timeout=20)
    counts = batch.request_counts
    assert counts.expired > 150 and counts.succeeded > 0
    assert counts.expired + counts.succeeded == 200
    found = results_by_id(client, batch.id)
    assert sum(result.type == "expired" for result in found.values()) == counts.expired  # type: ignore[attr-defined]


def test_results_are_archived_after_retention(start_server: Callable[..., Server]) -> None:
    short_lived = start_server(retention_seconds="2")
    client = short_lived.client()
    batch = client.messages.batches.create(requests=[simple_request("r")])  # type: ignore[list-item]
    wait_until_ended(client, batch.id)
    assert len(results_by_id(client, batch.id)) == 1
    deadline = time.monotonic() + 10
    while (batch := client.messages.batches.retrieve(batch.id)).archived_at is None:
        assert time.monotonic() < deadline, "never archived"
        time.sleep(0.2)
    with pytest.raises(anthropic.NotFoundError, match="archived"):
        list(client.messages.batches.results(batch.id))
    assert client.messages.batches.delete(batch.id).id == batch.id


def test_requests_extension_returns_params_filtered_by_result(
    start_server: Callable[..., Server],
) -> None:
    faulty = start_server(simulator_fault_rate="0.3")
    client = faulty.client()
    submitted = [simple_request(f"r{i}", f"prompt {i}", max_tokens=50 + i) for i in range(60)]
    batch = client.messages.batches.create(requests=submitted)  # type: ignore[arg-type]
    wait_until_ended(client, batch.id)
    found = results_by_id(client, batch.id)
    errored = {cid for cid, result in found.items() if result.type == "errored"}  # type: ignore[attr-defined]
    assert 0 < len(errored) < 60

    url = f"{faulty.base_url}/v1/messages/batches/{batch.id}/requests"
    headers = {"x-api-key": KEY}
    everything = [
        orjson.loads(line) for line in httpx.get(url, headers=headers).content.splitlines()
    ]
    assert everything == submitted
    only_errored = httpx.get(url, params={"result_type": "errored"}, headers=headers)
    assert only_errored.headers["content-type"].startswith("application/x-jsonl")
    lines = [orjson.loads(line) for line in only_errored.content.splitlines()]
    assert {line["custom_id"] for line in lines} == errored
    assert all(line == submitted[int(line["custom_id"][1:])] for line in lines)
    both = httpx.get(url, params={"result_type": "errored,succeeded"}, headers=headers)
    assert len(both.content.splitlines()) == 60
    bad = httpx.get(url, params={"result_type": "nope"}, headers=headers)
    assert bad.status_code == 400 and "result_type" in bad.json()["error"]["message"]
    other_key = httpx.get(url, headers={"x-api-key": "someone-else"})
    assert other_key.status_code == 404
