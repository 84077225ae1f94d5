"""Labels (`metadata`) on creates and the list filters, through the official SDK."""

import time
import uuid
from collections.abc import Callable

import anthropic
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import Server, simple_request


def create(client: anthropic.Anthropic, **extra: object) -> anthropic.types.messages.MessageBatch:
    return client.messages.batches.create(
        requests=[simple_request("a")],  # type: ignore[list-item]
        extra_body=extra,
    )


def wait_until_running(server: Server, count: int) -> None:
    """Until `count` requests are running on the backend (the engine's gauge in /metrics)."""
    deadline = time.monotonic() + 30
    while True:
        exposition = httpx.get(f"{server.base_url}/metrics", timeout=10).text
        running = sum(
            sample.value
            for family in text_string_to_metric_families(exposition)
            if family.name == "batchgate_requests_in_flight"
            for sample in family.samples
        )
        if running >= count:
            return
        assert time.monotonic() < deadline, f"{running} of {count} requests running"
        time.sleep(0.05)


def listed(client: anthropic.Anthropic, limit: int = 2, **query: object) -> list[str]:
    """Every page of the filtered list, walked with the SDK's own cursors."""
    return [batch.id for batch in client.messages.batches.list(limit=limit, extra_query=query)]


def test_labels_are_returned_and_filter_the_list_across_pages(
    start_on_store: Callable[..., Server],
) -> None:
    client = start_on_store().client()
    run = uuid.uuid4().hex
    made = {
        (team, stage): [create(client, metadata={"run": run, "team": team, "stage": stage}).id]
        for team in ("a", "b")
        for stage in ("dev", "prod")
    }
    extra = [create(client, metadata={"run": run, "team": "a", "stage": "dev"}).id for _ in "xyz"]
    made[("a", "dev")] += extra
    unlabeled = create(client)

    batch = client.messages.batches.retrieve(made[("b", "prod")][0])
    assert batch.to_dict()["metadata"] == {"run": run, "team": "b", "stage": "prod"}
    assert client.messages.batches.retrieve(unlabeled.id).to_dict()["metadata"] == {}

    newest_first = sorted(made[("a", "dev")], reverse=True)
    filters = {"metadata[run]": run, "metadata[team]": "a", "metadata[stage]": "dev"}
    assert listed(client, **filters) == newest_first
    assert listed(client, limit=1, **filters) == newest_first
    team_a = sorted(made[("a", "dev")] + made[("a", "prod")], reverse=True)
    assert listed(client, **{"metadata[run]": run, "metadata[team]": "a"}) == team_a
    assert listed(client, **{"metadata[run]": run, "metadata[team]": "c"}) == []
    # Another workspace's labels are not visible.
    assert listed(start_on_store().client(), **{"metadata[run]": run}) == []
    assert listed(client.with_options(api_key="sk-other"), **{"metadata[run]": run}) == []


def test_processing_status_filters_alone_and_with_labels(
    start_on_store: Callable[..., Server],
) -> None:
    server = start_on_store(simulator_latency_ms="60000", shutdown_seconds="1")
    client = server.client()
    run = uuid.uuid4().hex
    running = [create(client, metadata={"run": run}).id for _ in range(3)]
    wait_until_running(server, 3)
    # Its request is in flight for a minute: the batch stays canceling meanwhile.
    canceling = client.messages.batches.cancel(running.pop()).id
    assert listed(client, processing_status="canceling") == [canceling]
    assert listed(client, processing_status="ended") == []
    assert listed(client, processing_status="in_progress", **{"metadata[run]": run}) == sorted(
        running, reverse=True
    )
    with pytest.raises(anthropic.BadRequestError, match="processing_status"):
        listed(client, processing_status="done")


@pytest.mark.parametrize(
    ("metadata", "fragment"),
    [
        ({f"k{i}": "v" for i in range(17)}, "at most 16 labels"),
        ({"k" * 65: "v"}, "keys are 1 to 64 characters"),
        ({"": "v"}, "keys are 1 to 64 characters"),
        ({"k": "v" * 513}, "values are at most 512 characters"),
        ({"k": 1}, "metadata"),
        (["k"], "metadata"),
    ],
)
def test_bad_labels_are_400(server: Server, metadata: object, fragment: str) -> None:
    with pytest.raises(anthropic.BadRequestError, match=fragment):
        create(server.client(), metadata=metadata)
