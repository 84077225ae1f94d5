"""`priority` and `completion_window` in the create body, through the official SDK."""

import time
from collections.abc import Callable
from pathlib import Path

import anthropic
import pytest

from conftest import Server, simple_request, wait_until_ended


def requests(count: int) -> list[dict[str, object]]:
    return [simple_request(f"r{i}") for i in range(count)]


def test_higher_priority_batches_run_first(start_on_store: Callable[..., Server]) -> None:
    server = start_on_store(chunk_size="50", max_concurrency="50", simulator_latency_ms="50")
    client = server.client()
    low = client.messages.batches.create(requests=requests(1500))  # type: ignore[arg-type]
    high = client.messages.batches.create(
        requests=requests(1500),  # type: ignore[arg-type]
        extra_body={"priority": 10},
    )
    assert high.to_dict()["priority"] == 10 and low.to_dict()["priority"] == 0
    wait_until_ended(client, high.id)
    # Without priority the two would interleave chunk by chunk, the older one ending first.
    assert client.messages.batches.retrieve(low.id).request_counts.processing > 500
    wait_until_ended(client, low.id)


SLOW_ROUTE = """
[[routes]]
model = "*"
backend = "simulator"
latency_ms = 100
max_concurrency = 8
"""


def test_one_workspaces_backlog_does_not_starve_another(
    start_on_store: Callable[..., Server], tmp_path: Path
) -> None:
    config = tmp_path / "slow.toml"
    config.write_text(SLOW_ROUTE)
    server = start_on_store(api_keys="key-a,key-b", chunk_size="100", config=str(config))
    backlog, small = server.client("key-a"), server.client("key-b")
    # Workspace A: 2,400 requests in six batches, 30 s of the route's time.
    queued = [
        backlog.messages.batches.create(requests=requests(400))  # type: ignore[arg-type]
        for _ in range(6)
    ]
    time.sleep(1)
    started = time.monotonic()
    batch = small.messages.batches.create(requests=requests(40))  # type: ignore[arg-type]
    wait_until_ended(small, batch.id, timeout=30)
    # Alone, B's 40 requests take 0.5 s; with every other place of the route, 1 s. In turns by
    # batch (one of B's to four of A's chunks in flight) it would be 2.5 s or more.
    assert time.monotonic() - started < 2.5
    assert all(
        backlog.messages.batches.retrieve(b.id).processing_status == "in_progress" for b in queued
    )


def test_completion_window_expires_the_batch_early(start_on_store: Callable[..., Server]) -> None:
    server = start_on_store(max_concurrency="4", simulator_latency_ms="500")
    client = server.client()
    started = time.monotonic()
    batch = client.messages.batches.create(
        requests=requests(100),  # type: ignore[arg-type]
        extra_body={"completion_window": 1.5},
    )
    assert (batch.expires_at - batch.created_at).total_seconds() == pytest.approx(1.5)
    ended = wait_until_ended(client, batch.id, timeout=30)
    assert time.monotonic() - started < 10
    assert ended.request_counts.expired > 50
    assert ended.request_counts.succeeded + ended.request_counts.expired == 100


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"completion_window": 86_401}, "at most this server's expiry_seconds"),
        ({"completion_window": 0}, "completion_window"),
        ({"priority": 1.5}, "priority"),
        ({"priority": 10_000_000}, "priority"),
    ],
)
def test_bad_priority_and_windows_are_400(
    server: Server, extra: dict[str, object], fragment: str
) -> None:
    with pytest.raises(anthropic.BadRequestError, match=fragment):
        server.client().messages.batches.create(
            requests=requests(1),  # type: ignore[arg-type]
            extra_body=extra,
        )
