"""Abort policies: the batch cancels itself as a user's cancel would, and says why."""

from collections.abc import Callable
from typing import Any

import anthropic
import pytest

from conftest import Server, simple_request, wait_until_ended


def create(
    client: anthropic.Anthropic, requests: list[dict[str, Any]], abort: object
) -> anthropic.types.messages.MessageBatch:
    return client.messages.batches.create(
        requests=requests,  # type: ignore[arg-type]
        extra_body={"abort": abort},
    )


def broken(count: int) -> list[dict[str, Any]]:
    """A broken prompt template: every request is invalid."""
    return [simple_request(f"broken{i}", max_tokens=0) for i in range(count)]


def test_errored_share_cancels_after_min_results(start_on_store: Callable[..., Server]) -> None:
    server = start_on_store(chunk_size="50", flush_seconds="0.05", simulator_latency_ms="20")
    client = server.client()
    batch = create(client, broken(5000), {"errored_share": 0.2, "min_results": 100})
    assert batch.to_dict()["abort"] == {"errored_share": 0.2, "min_results": 100}
    ended = wait_until_ended(client, batch.id, timeout=60)
    counts = ended.request_counts
    assert counts.errored >= 100 and counts.canceled > 4000
    assert ended.cancel_initiated_at is not None
    reason = ended.to_dict()["cancel_reason"]
    assert reason["type"] == "abort_policy"
    assert reason["message"].startswith("errored share 1.00 > 0.20 after ")


def test_a_healthy_batch_is_not_canceled(start_on_store: Callable[..., Server]) -> None:
    client = start_on_store().client()
    requests = [simple_request(f"r{i}") for i in range(300)] + broken(10)
    batch = create(client, requests, {"errored_share": 0.2, "min_results": 100})
    ended = wait_until_ended(client, batch.id)
    assert ended.request_counts.succeeded == 300 and ended.request_counts.errored == 10
    assert ended.to_dict()["cancel_reason"] is None


def test_max_output_tokens_and_max_cost(start_on_store: Callable[..., Server]) -> None:
    server = start_on_store(
        prices=True, chunk_size="20", flush_seconds="0.05", simulator_latency_ms="20"
    )
    client = server.client()
    requests = [simple_request(f"r{i}", "say something long") for i in range(3000)]
    by_tokens = create(client, requests, {"max_output_tokens": 500})
    by_cost = create(client, requests, {"max_cost_usd": 0.0001})
    for batch_id, prefix in ((by_tokens.id, "output tokens "), (by_cost.id, "cost ")):
        ended = wait_until_ended(client, batch_id, timeout=60).to_dict()
        assert ended["cancel_reason"]["type"] == "abort_policy"
        assert ended["cancel_reason"]["message"].startswith(prefix)
        assert ended["request_counts"]["canceled"] > 1000


def test_a_users_cancel_says_so(start_on_store: Callable[..., Server]) -> None:
    client = start_on_store(simulator_latency_ms="50").client()
    batch = client.messages.batches.create(
        requests=[simple_request(f"r{i}") for i in range(2000)]  # type: ignore[misc]
    )
    canceling = client.messages.batches.cancel(batch.id)
    assert canceling.to_dict()["cancel_reason"] == {"type": "user"}
    assert wait_until_ended(client, batch.id).to_dict()["cancel_reason"] == {"type": "user"}


@pytest.mark.parametrize(
    ("abort", "fragment"),
    [
        ({}, "set errored_share, max_output_tokens or max_cost_usd"),
        ({"errored_share": 1.5}, "abort.errored_share"),
        ({"errored_share": 0.2, "min_results": 0}, "abort.min_results"),
        ({"max_tokens": 5}, "abort"),
        ({"max_cost_usd": 1.0}, "no price table"),
    ],
)
def test_bad_policies_are_400(server: Server, abort: object, fragment: str) -> None:
    with pytest.raises(anthropic.BadRequestError, match=fragment):
        create(server.client(), [simple_request("a")], abort)
