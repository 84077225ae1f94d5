"""The wire format, checked with raw HTTP where the SDK would hide it (0.x style included)."""

import re
from collections.abc import Callable

import anthropic
import httpx
import orjson
import pytest

from conftest import KEY, Server, simple_request, wait_until_ended

V0_HEADERS = {
    "x-api-key": KEY,
    "anthropic-version": "2023-06-01",
    "content-type": "application/json",
}
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
BATCH_KEYS = {
    "id",
    "type",
    "processing_status",
    "request_counts",
    "created_at",
    "expires_at",
    "ended_at",
    "cancel_initiated_at",
    "archived_at",
    "results_url",
    # batchgate's extra fields (docs/api.md, "Beyond the original").
    "metadata",
    "priority",
    "abort",
    "cancel_reason",
    "usage",
    "cost",
}


def create(server: Server, body: object, headers: dict[str, str] = V0_HEADERS) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/v1/messages/batches",
        content=orjson.dumps(body),
        headers=headers,
        timeout=60,
    )


def assert_error(response: httpx.Response, status: int, error_type: str, fragment: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert fragment in body["error"]["message"]
    assert body["request_id"] == response.headers["request-id"]


def test_v0_style_client_walks_the_whole_lifecycle(server: Server) -> None:
    response = create(server, {"requests": [simple_request("a"), simple_request("b")]})
    assert response.status_code == 200
    batch = response.json()
    assert set(batch) == BATCH_KEYS
    assert batch["type"] == "message_batch"
    assert batch["results_url"] is None and batch["ended_at"] is None
    assert sum(batch["request_counts"].values()) == 2
    assert TIMESTAMP.match(batch["created_at"]) and TIMESTAMP.match(batch["expires_at"])
    assert response.headers["request-id"].startswith("req_")

    while batch["processing_status"] != "ended":
        batch = httpx.get(
            f"{server.base_url}/v1/messages/batches/{batch['id']}", headers=V0_HEADERS
        ).json()
    assert set(batch) == BATCH_KEYS
    assert TIMESTAMP.match(batch["ended_at"])
    assert batch["results_url"] == f"{server.base_url}/v1/messages/batches/{batch['id']}/results"

    results = httpx.get(
        batch["results_url"], headers={**V0_HEADERS, "accept": "application/binary"}
    )
    assert results.headers["content-type"].startswith("application/x-jsonl")
    assert f"{batch['id']}_results.jsonl" in results.headers["content-disposition"]
    assert results.content.endswith(b"\n") and b"\r" not in results.content
    lines = results.content.split(b"\n")[:-1]
    assert all(line for line in lines)
    assert all(orjson.dumps(orjson.loads(line)) == line for line in lines), "compact JSON"
    assert sorted(orjson.loads(line)["custom_id"] for line in lines) == ["a", "b"]


def test_beta_query_and_headers_are_accepted(server: Server) -> None:
    headers = {
        "authorization": f"Bearer {KEY}",
        "anthropic-version": "2026-10-21",
        "anthropic-beta": "message-batches-2024-09-24",
        "x-stainless-lang": "python",
        "content-type": "application/json",
    }
    response = httpx.post(
        f"{server.base_url}/v1/messages/batches?beta=true",
        content=orjson.dumps({"requests": [simple_request("beta")]}),
        headers=headers,
    )
    assert response.status_code == 200, response.text
    listed = httpx.get(f"{server.base_url}/v1/messages/batches?beta=true&limit=1", headers=headers)
    assert listed.json()["data"][0]["id"] == response.json()["id"]


def test_beta_sdk_resource_and_async_client(server: Server) -> None:
    client = server.client()
    batch = client.beta.messages.batches.create(requests=[simple_request("b1")])  # type: ignore[list-item]
    wait_until_ended(client, batch.id)
    [result] = list(client.beta.messages.batches.results(batch.id))
    assert result.result.type == "succeeded"

    async def run() -> list[str]:
        async_client = server.async_client()
        made = await async_client.beta.messages.batches.create(requests=[simple_request("b2")])  # type: ignore[list-item]
        while (await async_client.messages.batches.retrieve(made.id)).processing_status != "ended":
            pass
        return [
            r.custom_id async for r in await async_client.beta.messages.batches.results(made.id)
        ]

    import asyncio

    assert asyncio.run(run()) == ["b2"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"requests": []}, "requests: List should have at least 1 item"),
        ({}, "requests"),
        ({"requests": [{"custom_id": "a"}]}, "requests.0"),
        (
            {"requests": [{"custom_id": "a", "params": []}]},
            "requests.0.params: Input should be an object",
        ),
        ({"requests": [{"custom_id": 7, "params": {}}]}, "requests.0.custom_id"),
        ({"requests": [{"custom_id": "a", "params": {}, "extra": 1}]}, "requests.0"),
        ({"requests": [{"custom_id": "bad id!", "params": {}}]}, "requests.0.custom_id"),
        ({"requests": [{"custom_id": "x" * 65, "params": {}}]}, "requests.0.custom_id"),
        ({"requests": [{"custom_id": "", "params": {}}]}, "requests.0.custom_id"),
        (
            {"requests": [simple_request("same"), simple_request("other"), simple_request("same")]},
            "requests.2.custom_id",
        ),
        ({"requests": "nope"}, "requests"),
        ([1, 2], "body"),
    ],
)
def test_bad_creates_are_400_and_store_nothing(server: Server, body: object, fragment: str) -> None:
    before = server.client().messages.batches.list(limit=1).data
    assert_error(create(server, body), 400, "invalid_request_error", fragment)
    assert server.client().messages.batches.list(limit=1).data == before


def test_malformed_json_is_400(server: Server) -> None:
    response = httpx.post(
        f"{server.base_url}/v1/messages/batches", content=b'{"requests": [', headers=V0_HEADERS
    )
    assert_error(response, 400, "invalid_request_error", "not valid JSON")


def test_too_many_requests_is_400(server: Server) -> None:
    body = {"requests": [{"custom_id": f"r{i}", "params": {}} for i in range(100_001)]}
    assert_error(create(server, body), 400, "invalid_request_error", "at most 100000")


def test_oversized_body_is_413_without_reading_it(start_server: Callable[..., Server]) -> None:
    small = start_server(max_body_bytes="1000")
    body = {"requests": [simple_request(f"r{i}") for i in range(50)]}
    assert_error(create(small, body), 413, "request_too_large", "maximum size")

    def chunks() -> object:  # no content-length: the cap applies while reading
        yield orjson.dumps(body)

    response = httpx.post(
        f"{small.base_url}/v1/messages/batches",
        content=chunks(),
        headers=V0_HEADERS,  # type: ignore[arg-type]
    )
    assert_error(response, 413, "request_too_large", "maximum size")
    assert small.client().messages.batches.list().data == []


def test_unknown_ids_are_404_everywhere(server: Server) -> None:
    client = server.client()
    missing = "msgbatch_doesnotexist"
    for call in (
        lambda: client.messages.batches.retrieve(missing),
        lambda: client.messages.batches.cancel(missing),
        lambda: client.messages.batches.delete(missing),
    ):
        with pytest.raises(anthropic.NotFoundError) as raised:
            call()
        assert raised.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
        assert raised.value.request_id and raised.value.request_id.startswith("req_")
    response = httpx.get(
        f"{server.base_url}/v1/messages/batches/{missing}/results", headers=V0_HEADERS
    )
    assert_error(response, 404, "not_found_error", missing)
    assert_error(
        httpx.get(f"{server.base_url}/v1/nothing", headers=V0_HEADERS), 404, "not_found_error", ""
    )


def test_wrong_state_is_400_never_409(start_server: Callable[..., Server]) -> None:
    # In progress for 3 s: long enough for the calls below on a busy machine.
    slow = start_server(simulator_latency_ms="1000", max_concurrency="1")
    client = slow.client()
    batch = client.messages.batches.create(requests=[simple_request(f"r{i}") for i in range(3)])  # type: ignore[misc]
    with pytest.raises(anthropic.BadRequestError, match="only ended batches can be deleted"):
        client.messages.batches.delete(batch.id)
    response = httpx.get(
        f"{slow.base_url}/v1/messages/batches/{batch.id}/results", headers=V0_HEADERS
    )
    assert_error(response, 400, "invalid_request_error", "ready once it has ended")
    with pytest.raises(anthropic.AnthropicError, match="results"):
        client.messages.batches.results(batch.id)
    wait_until_ended(client, batch.id)
    with pytest.raises(anthropic.BadRequestError, match="already ended"):
        client.messages.batches.cancel(batch.id)


def test_cancel_and_delete_with_empty_json_body(server: Server) -> None:
    batch = create(server, {"requests": [simple_request("x")]}).json()
    wait_until_ended(server.client(), batch["id"])
    response = httpx.delete(
        f"{server.base_url}/v1/messages/batches/{batch['id']}", headers=V0_HEADERS
    )
    assert response.json() == {"id": batch["id"], "type": "message_batch_deleted"}
    gone = httpx.get(f"{server.base_url}/v1/messages/batches/{batch['id']}", headers=V0_HEADERS)
    assert_error(gone, 404, "not_found_error", batch["id"])


@pytest.mark.parametrize("limit", ["0", "1001", "ten"])
def test_list_limit_outside_range_is_400(server: Server, limit: str) -> None:
    response = httpx.get(f"{server.base_url}/v1/messages/batches?limit={limit}", headers=V0_HEADERS)
    assert_error(response, 400, "invalid_request_error", "limit")


def test_list_page_shape(server: Server) -> None:
    page = httpx.get(f"{server.base_url}/v1/messages/batches?limit=1", headers=V0_HEADERS).json()
    assert set(page) == {"data", "has_more", "first_id", "last_id"}
    assert isinstance(page["has_more"], bool)
