"""Results as they come (partial, follow, after_part, filters) and retries as child batches with
their lineage and merged results: through the official SDK, on SQLite and on PostgreSQL."""

import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import orjson
import pytest
from anthropic.types.messages import MessageBatch

from conftest import Cluster, Server, simple_request, wait_until_ended
from key_commands import create_key

SLOW = {
    "simulator_latency_ms": "100",
    "chunk_size": "20",
    "max_concurrency": "10",
    "flush_seconds": "0.1",
}


class Deployment:
    """batchgate on one store: `start` (re)starts it with settings, on the same database."""

    def __init__(self, kind: str, tmp_path: Path, cluster: Callable[[], Cluster]) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self._cluster_of = cluster
        self._cluster: Cluster | None = None
        self.server: Server | None = None

    @property
    def database_url(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.tmp_path / 'batchgate.db'}"
        return self._cluster_of().database_url

    def start(self, **settings: str) -> Server:
        self.stop()
        if self.kind == "sqlite":
            self.server = Server(self.tmp_path, **settings).start()
        else:
            self._cluster = self._cluster or self._cluster_of()
            self._cluster.start_worker(**settings)
            self.server = self._cluster.start_api(**settings)
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self._cluster is not None:
            for worker in self._cluster.workers:
                worker.stop()
            self._cluster.workers.clear()


@pytest.fixture(params=["sqlite", "postgres"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    running = Deployment(request.param, tmp_path, lambda: request.getfixturevalue("cluster"))
    yield running
    running.stop()


def requests(count: int, prefix: str = "r") -> list[Any]:
    return [simple_request(f"{prefix}{i}", f"question {i}") for i in range(count)]


def results_response(
    client: anthropic.Anthropic, batch_id: str, **params: str | list[str]
) -> httpx.Response:
    """The results endpoint with extension parameters, streamed raw (a running batch has no
    results_url for the SDK's own `results`)."""
    stream = client.get(
        f"/v1/messages/batches/{batch_id}/results",
        cast_to=httpx.Response,
        stream=True,
        stream_cls=anthropic.Stream[object],
        options={"params": params},
    )
    response: httpx.Response = stream.response
    return response


def lines_of(response: httpx.Response) -> list[bytes]:
    return [line.encode() for line in response.iter_lines() if line]


def full_results(client: anthropic.Anthropic, batch_id: str) -> list[bytes]:
    with client.messages.batches.with_streaming_response.results(batch_id) as response:
        return [line.encode() for line in response.iter_lines() if line]


def test_followers_and_partial_readers_see_each_final_line_once(deployment: Deployment) -> None:
    server = deployment.start(**SLOW)
    client = server.client()
    batch = client.messages.batches.create(requests=requests(200))
    followed: list[bytes] = []
    follower = threading.Thread(
        target=lambda: followed.extend(lines_of(results_response(client, batch.id, follow="true")))
    )
    follower.start()

    # Anthropic's answer stays the default while the batch runs.
    with pytest.raises(anthropic.BadRequestError):
        client.get(f"/v1/messages/batches/{batch.id}/results", cast_to=str)
    while not (counts := client.messages.batches.retrieve(batch.id).request_counts).succeeded:
        pass
    first = results_response(client, batch.id, partial="true")
    position = int(first.headers["batchgate-last-part"])
    early = lines_of(first)
    assert 0 < len(early) < 200 and position > 0
    follower.join(timeout=60)
    assert not follower.is_alive()
    ended = wait_until_ended(client, batch.id)
    assert ended.request_counts.succeeded == 200 and counts.processing > 0

    final = full_results(client, batch.id)
    assert len(final) == 200
    assert sorted(followed) == sorted(final)
    assert set(early) <= set(final)
    # Those after the position the first read reached: exactly the rest.
    rest = lines_of(results_response(client, batch.id, partial="true", after_part=str(position)))
    assert sorted(early + rest) == sorted(final)


def test_results_filter_by_type_and_custom_id_through_the_sdk(deployment: Deployment) -> None:
    server = deployment.start(simulator_fault_rate="0.5")
    client = server.client()
    batch = client.messages.batches.create(requests=requests(40))
    wait_until_ended(client, batch.id)
    final = full_results(client, batch.id)
    kinds = Counter(orjson.loads(line)["result"]["type"] for line in final)
    assert kinds["errored"] and kinds["succeeded"]

    errored = list(
        client.messages.batches.results(batch.id, extra_query={"result_type": "errored"})
    )
    assert len(errored) == kinds["errored"]
    assert {r.result.type for r in errored} == {"errored"}
    both = lines_of(results_response(client, batch.id, result_type=["errored", "succeeded"]))
    assert both == final
    picked = lines_of(results_response(client, batch.id, custom_id=["r3", "r7", "nope"]))
    assert sorted(picked) == sorted(
        line for line in final if orjson.loads(line)["custom_id"] in ("r3", "r7")
    )
    for bad in ({"result_type": "won"}, {"after_part": "-1"}, {"follow": "maybe"}):
        with pytest.raises(anthropic.BadRequestError):
            client.get(
                f"/v1/messages/batches/{batch.id}/results", cast_to=str, options={"params": bad}
            )
    with pytest.raises(anthropic.BadRequestError, match="at most 1000"):
        client.get(
            f"/v1/messages/batches/{batch.id}/results",
            cast_to=str,
            options={"params": {"custom_id": [f"c{i}" for i in range(1001)]}},
        )


def retry(client: anthropic.Anthropic, batch_id: str, **body: list[str]) -> MessageBatch:
    return client.post(
        f"/v1/messages/batches/{batch_id}/retry", cast_to=MessageBatch, body=body or None
    )


LINEAGE_FIELDS = ("parent_batch_id", "retry_batch_ids", "merged_request_counts")


def test_a_retry_chain_of_three_generations_merges_into_one_line_per_request(
    deployment: Deployment,
) -> None:
    client = deployment.start(
        simulator_fault_rate="0.6", simulator_latency_ms="50", max_concurrency="2"
    ).client()
    original = client.messages.batches.create(requests=requests(60))
    with pytest.raises(anthropic.BadRequestError, match="only ended batches"):
        retry(client, original.id)
    wait_until_ended(client, original.id)
    assert "parent_batch_id" not in client.messages.batches.retrieve(original.id).model_extra
    # The simulator's faults hang on a request's params: a lower rate fails a subset of them.
    client = deployment.start(simulator_fault_rate="0.3").client()
    child = retry(client, original.id, error_types=["api_error", "overloaded_error"])
    assert child.model_extra["parent_batch_id"] == original.id
    assert child.model_extra["retry_batch_ids"] == []
    parent = client.messages.batches.retrieve(original.id)
    assert child.request_counts.processing == parent.request_counts.errored > 0
    with pytest.raises(anthropic.BadRequestError, match="retried already"):
        retry(client, original.id)

    wait_until_ended(client, child.id)
    client = deployment.start().client()
    grandchild = retry(client, child.id, result_types=["errored"])
    wait_until_ended(client, grandchild.id)
    with pytest.raises(anthropic.BadRequestError, match="No request"):
        retry(client, grandchild.id)

    merged = full_lines(client, original.id, merged="true")
    assert sorted(orjson.loads(line)["custom_id"] for line in merged) == sorted(
        f"r{i}" for i in range(60)
    )
    assert {orjson.loads(line)["result"]["type"] for line in merged} == {"succeeded"}
    lines_by_batch = {b: set(full_results(client, b)) for b in (original.id, child.id)}
    assert set(merged) <= set(full_results(client, grandchild.id)) | set().union(
        *lines_by_batch.values()
    )
    shown = client.messages.batches.retrieve(original.id).model_extra
    assert {key: shown[key] for key in LINEAGE_FIELDS} == {
        "parent_batch_id": None,
        "retry_batch_ids": [child.id],
        "merged_request_counts": {
            "processing": 0, "succeeded": 60, "errored": 0, "canceled": 0, "expired": 0,
        },
    }  # fmt: skip
    listed = {b.id: b.model_extra for b in client.messages.batches.list()}
    assert listed[grandchild.id]["parent_batch_id"] == child.id
    assert listed[grandchild.id]["retry_batch_ids"] == []
    assert "merged_request_counts" not in listed[grandchild.id]

    with pytest.raises(anthropic.BadRequestError, match="cascade=true"):
        client.messages.batches.delete(original.id)
    client.messages.batches.delete(original.id, extra_query={"cascade": "true"})
    for gone in (original.id, child.id, grandchild.id):
        with pytest.raises(anthropic.NotFoundError):
            client.messages.batches.retrieve(gone)


def full_lines(client: anthropic.Anthropic, batch_id: str, **params: str) -> list[bytes]:
    return lines_of(results_response(client, batch_id, **params))


def test_another_workspace_gets_404_on_every_new_endpoint(deployment: Deployment) -> None:
    ours = create_key(deployment.database_url, "ours").key
    theirs = create_key(deployment.database_url, "theirs").key
    server = deployment.start()
    client = server.client(ours)
    batch = client.messages.batches.create(requests=requests(3))
    wait_until_ended(client, batch.id)
    other = server.client(theirs)
    for params in ({"partial": "true"}, {"follow": "true"}, {"merged": "true"}, {}):
        with pytest.raises(anthropic.NotFoundError):
            other.get(
                f"/v1/messages/batches/{batch.id}/results", cast_to=str, options={"params": params}
            )
    with pytest.raises(anthropic.NotFoundError):
        retry(other, batch.id, result_types=["succeeded"])
    child = retry(client, batch.id, result_types=["succeeded"])
    with pytest.raises(anthropic.NotFoundError):
        other.messages.batches.retrieve(child.id)


def follow_across_a_kill(
    deployment: Deployment, batch_id: str, kill_after: int
) -> tuple[list[bytes], int]:
    """Follows the batch to its end, killing the API server (-9) once `kill_after` lines have
    come; reconnects as a follower should: from the same position as the response that broke
    (here none: the start), skipping the lines it got from there. Returns every line received,
    and how many responses it took."""
    assert deployment.server is not None
    seen: list[bytes] = []
    received = 0
    responses = 0
    client = deployment.server.client()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        params = {"follow": "true"}
        if received:
            params["skip_lines"] = str(received)
        try:
            response = results_response(client, batch_id, **params)
        except anthropic.APIConnectionError:
            time.sleep(0.1)
            continue
        responses += 1
        assert int(response.headers["batchgate-last-part"]) >= 0
        # The HTTP library the SDK runs on (httpx, or its successor in newer SDKs).
        transport_error = sys.modules[type(response).__module__.split(".")[0]].HTTPError
        try:
            for line in response.iter_lines():
                if not line:
                    continue
                seen.append(line.encode())
                received += 1
                if len(seen) == kill_after:
                    deployment.server.kill()
                    deployment.server.start()
            return seen, responses
        except transport_error:
            continue
    raise AssertionError(f"not followed to the end: {len(seen)} lines in {responses} responses")


def test_a_follower_of_10000_requests_sees_each_once_across_a_kill_9(
    deployment: Deployment,
) -> None:
    server = deployment.start(
        simulator_latency_ms="20", max_concurrency="50", chunk_size="500", flush_seconds="0.1"
    )
    client = server.client()
    batch = client.messages.batches.create(requests=requests(10_000))

    seen, responses = follow_across_a_kill(deployment, batch.id, kill_after=1500)

    assert responses >= 2
    wait_until_ended(deployment.server.client(), batch.id)  # type: ignore[union-attr]
    final = full_results(deployment.server.client(), batch.id)  # type: ignore[union-attr]
    assert len(final) == 10_000
    assert len(seen) == len(set(seen)) == 10_000
    assert set(seen) == set(final)
