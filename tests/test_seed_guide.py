"""Every example of the seed batch-processing guide, run unmodified against batchgate.

The guide's code reads ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY from the environment, as a user
would set them. Only its placeholders (batch ids, `questions`, `documents`, `save_result`) are
filled in, and its one-minute sleeps are shortened.
"""

import asyncio
import base64
import time
from collections.abc import Callable

import anthropic
import pytest
from anthropic import Anthropic, AsyncAnthropic

from conftest import KEY, Server, wait_until_ended, wait_until_in_flight


@pytest.fixture(autouse=True)
def anthropic_env(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    # The guide polls once a minute; the simulator answers in milliseconds.
    real_sleep = time.sleep
    monkeypatch.setattr(time, "sleep", lambda seconds: real_sleep(min(seconds, 0.05)))


def basic_batch(client: Anthropic) -> anthropic.types.messages.MessageBatch:
    batch = client.messages.batches.create(
        requests=[
            {
                "custom_id": "request-1",
                "params": {
                    "model": "claude-sonnet-4-5-20250929",
                    "max_tokens": 1024,
                    "messages": [{"role": "user", "content": "What is AI?"}],
                },
            },
            {
                "custom_id": "request-2",
                "params": {
                    "model": "claude-sonnet-4-5-20250929",
                    "max_tokens": 1024,
                    "messages": [{"role": "user", "content": "What is ML?"}],
                },
            },
        ]
    )
    print(f"Batch ID: {batch.id}")
    return batch


def test_basic_batch_check_status_poll_and_results(capsys: pytest.CaptureFixture[str]) -> None:
    client = Anthropic()
    batch = basic_batch(client)
    assert batch.id.startswith("msgbatch_")
    assert batch.processing_status == "in_progress"

    # Check Status
    batch_id = batch.id
    batch = client.messages.batches.retrieve(batch_id)
    print(f"Status: {batch.processing_status}")
    print(
        f"Succeeded: {batch.request_counts.succeeded}/"
        f"{batch.request_counts.processing + batch.request_counts.succeeded}"
    )
    print(f"Errored: {batch.request_counts.errored}")

    # Poll Until Complete
    while True:
        batch = client.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended":
            break
        print(f"Processing: {batch.request_counts.processing} requests remaining")
        time.sleep(60)
    print("Batch complete!")
    assert batch.request_counts.succeeded == 2

    # Get Results
    results = client.messages.batches.results(batch_id)
    for response in results:
        if response.result.type == "succeeded":
            print(f"{response.custom_id}: {response.result.message.content[0].text}")
        elif response.result.type == "errored":
            print(f"{response.custom_id}: Error - {response.result.error.message}")

    # Process Results
    results_by_id = {}
    for response in client.messages.batches.results(batch_id):
        if response.result.type == "succeeded":
            results_by_id[response.custom_id] = response.result.message.content[0].text
        elif response.result.type == "errored":
            results_by_id[response.custom_id] = f"Error: {response.result.error.message}"
    print(results_by_id["request-1"])

    out = capsys.readouterr().out
    assert f"Batch ID: {batch_id}" in out
    assert "Batch complete!" in out
    assert "request-1: " in out and "request-2: " in out
    assert "What is AI" in results_by_id["request-1"]
    assert "What is ML" in results_by_id["request-2"]


def test_large_scale_batch() -> None:
    client = Anthropic()
    questions = [f"Question number {i}: why is the sky blue?" for i in range(3000)]
    saved: dict[str, object] = {}

    def save_result(custom_id: str, result: object) -> None:
        saved[custom_id] = result

    requests = []
    for i, question in enumerate(questions):
        requests.append(
            {
                "custom_id": f"question-{i}",
                "params": {
                    "model": "claude-sonnet-4-5-20250929",
                    "max_tokens": 1024,
                    "messages": [{"role": "user", "content": question}],
                },
            }
        )
    batch = client.messages.batches.create(requests=requests)
    while True:
        batch = client.messages.batches.retrieve(batch.id)
        if batch.processing_status == "ended":
            break
        time.sleep(60)
    for response in client.messages.batches.results(batch.id):
        save_result(response.custom_id, response.result)

    assert sorted(saved) == sorted(f"question-{i}" for i in range(3000))
    assert batch.request_counts.succeeded == 3000
    assert all(result.type == "succeeded" for result in saved.values())  # type: ignore[attr-defined]


def test_cancel_delete_and_list(
    start_server: Callable[..., Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ten seconds of requests two at a time: a cancel ends most of them, however busy the machine.
    slow_server = start_server(simulator_latency_ms="1000", max_concurrency="2")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", slow_server.base_url)
    client = Anthropic()
    slow = client.messages.batches.create(
        requests=[
            {
                "custom_id": f"slow-{i}",
                "params": {
                    "model": "claude-sonnet-4-5-20250929",
                    "max_tokens": 1024,
                    "messages": [{"role": "user", "content": "x"}],
                    "stream": False,
                },
            }
            for i in range(20)
        ]
    )
    wait_until_in_flight(slow_server)  # the guide's batch is long running by the time it cancels
    # Cancel Batch
    batch = client.messages.batches.cancel(slow.id)
    print(f"Status: {batch.processing_status}")
    assert batch.processing_status == "canceling"
    assert batch.cancel_initiated_at is not None
    batch = wait_until_ended(client, slow.id)
    counts = batch.request_counts
    assert counts.succeeded + counts.canceled == 20
    assert counts.canceled >= 10

    # Delete Batch (must be ended first)
    deleted = client.messages.batches.delete(slow.id)
    print(f"Deleted: {deleted.id}")
    assert deleted.id == slow.id
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(slow.id)

    # List Batches
    made = [basic_batch(client).id for _ in range(12)]
    listed = [batch.id for batch in client.messages.batches.list(limit=10)]
    for batch in client.messages.batches.list(limit=10):
        print(f"{batch.id}: {batch.processing_status}")
    assert set(made) <= set(listed)
    assert listed == sorted(listed, reverse=True)

    # Paginate manually
    page = client.messages.batches.list(limit=10)
    for batch in page.data:
        print(batch.id)
    assert page.has_next_page()
    next_page = page.get_next_page()
    assert next_page.data and next_page.data[0].id < page.data[-1].id


def test_batch_with_tools() -> None:
    client = Anthropic()
    batch = client.messages.batches.create(
        requests=[
            {
                "custom_id": "weather-sf",
                "params": {
                    "model": "claude-sonnet-4-5-20250929",
                    "max_tokens": 1024,
                    "tools": [
                        {
                            "name": "get_weather",
                            "description": "Get weather",
                            "input_schema": {
                                "type": "object",
                                "properties": {"location": {"type": "string"}},
                                "required": ["location"],
                            },
                        }
                    ],
                    "messages": [{"role": "user", "content": "What's the weather in SF?"}],
                },
            }
        ]
    )
    wait_until_ended(client, batch.id)
    [response] = list(client.messages.batches.results(batch.id))
    assert response.result.type == "succeeded"
    message = response.result.message
    assert message.stop_reason == "tool_use"
    tool_use = next(block for block in message.content if block.type == "tool_use")
    assert tool_use.name == "get_weather"
    assert isinstance(tool_use.input["location"], str)  # type: ignore[index]


def test_batch_with_documents() -> None:
    client = Anthropic()
    pdf = base64.b64encode(b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF").decode()
    documents = [{"id": n, "data": pdf} for n in range(3)]
    requests = []
    for doc in documents:
        requests.append(
            {
                "custom_id": f"doc-{doc['id']}",
                "params": {
                    "model": "claude-sonnet-4-5-20250929",
                    "max_tokens": 2048,
                    "messages": [
                        {
                            "role": "user",
                            "content": [
                                {
                                    "type": "document",
                                    "source": {
                                        "type": "base64",
                                        "media_type": "application/pdf",
                                        "data": doc["data"],
                                    },
                                },
                                {"type": "text", "text": "Summarize this document"},
                            ],
                        }
                    ],
                },
            }
        )
    batch = client.messages.batches.create(requests=requests)
    batch = wait_until_ended(client, batch.id)
    assert batch.request_counts.succeeded == 3
    for response in client.messages.batches.results(batch.id):
        assert response.result.type == "succeeded"
        assert response.result.message.content[0].text


def test_async_batch_operations() -> None:
    """The guide's async example, with the one fix the SDK needs: `results()` is a coroutine."""
    original_sleep = asyncio.sleep

    async def main() -> list[object]:
        client = AsyncAnthropic()
        batch = await client.messages.batches.create(
            requests=[
                {
                    "custom_id": "async-1",
                    "params": {
                        "model": "claude-sonnet-4-5-20250929",
                        "max_tokens": 1024,
                        "messages": [{"role": "user", "content": "What is async?"}],
                    },
                }
            ]
        )
        while True:
            batch = await client.messages.batches.retrieve(batch.id)
            if batch.processing_status == "ended":
                break
            await original_sleep(0.05)
        results = []
        async for response in await client.messages.batches.results(batch.id):
            results.append(response)
        return results

    results = asyncio.run(main())
    assert [r.custom_id for r in results] == ["async-1"]  # type: ignore[attr-defined]


def test_handle_errors_gracefully_and_monitor_progress(
    start_server: Callable[..., Server],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    faulty = start_server(simulator_fault_rate="0.5", simulator_latency_ms="5")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", faulty.base_url)
    client = Anthropic()
    batch = client.messages.batches.create(
        requests=[
            {
                "custom_id": f"user-{user_id}-question-{question_id}",
                "params": {
                    "model": "claude-sonnet-4-5-20250929",
                    "max_tokens": 64,
                    "messages": [{"role": "user", "content": f"Question {user_id}/{question_id}"}],
                },
            }
            for user_id in range(5)
            for question_id in range(20)
        ]
    )
    batch_id = batch.id

    def monitor_batch(batch_id: str) -> None:
        while True:
            batch = client.messages.batches.retrieve(batch_id)
            total = sum(
                [
                    batch.request_counts.processing,
                    batch.request_counts.succeeded,
                    batch.request_counts.errored,
                ]
            )
            completed = batch.request_counts.succeeded + batch.request_counts.errored
            progress = (completed / total * 100) if total > 0 else 0
            print(f"Progress: {progress:.1f}% ({completed}/{total})")
            if batch.processing_status == "ended":
                break
            time.sleep(60)

    monitor_batch(batch_id)
    assert "Progress: 100.0% (100/100)" in capsys.readouterr().out

    processed, logged, retried = [], [], []

    def process_success(response: object) -> None:
        processed.append(response)

    def log_error(custom_id: str, error: object) -> None:
        logged.append((custom_id, error))

    def retry_if_needed(custom_id: str) -> None:
        retried.append(custom_id)

    for response in client.messages.batches.results(batch_id):
        if response.result.type == "succeeded":
            process_success(response)
        elif response.result.type == "errored":
            log_error(response.custom_id, response.result.error)
            retry_if_needed(response.custom_id)

    assert len(processed) + len(logged) == 100
    assert 20 <= len(logged) <= 80
    for _, error in logged:
        assert error.error.type in ("api_error", "overloaded_error")  # type: ignore[attr-defined]
        assert error.message == error.error.message  # type: ignore[attr-defined]
