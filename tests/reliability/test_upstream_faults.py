"""An upstream failing 30 % of calls, in every way it can: each request still ends exactly once.

A real `batchgate serve` routes to a fake upstream with two retries: Anthropic's Messages API
(tests/backends/fake_anthropic.py) or OpenAI's chat completions (tests/backends/fake_openai.py).
Whatever the fake answered each attempt, the result must follow: a transient
fault is retried; the last answer decides, a 200 as `succeeded`, a fault as `errored` with the
type that fault stands for; a 200 that is not JSON is not retried.
"""

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backends.fake_anthropic import ALL_FAULTS, FakeAnthropic
from backends.fake_openai import FakeOpenAI
from conftest import KEY, Server, wait_until_ended

MAX_RETRIES = 2
# The error type a request gets when this was its last attempt's answer.
ERROR_TYPE_OF_FAULT = {
    "429": "rate_limit_error",
    "429-retry-after-ms": "rate_limit_error",
    "429-retry-after": "rate_limit_error",
    "529": "overloaded_error",
    "503": "overloaded_error",
    "500": "api_error",
    "reset": "api_error",
    "truncated": "api_error",
    "timeout": "api_error",
    "stall": "api_error",
    "invalid-json": "api_error",
}
NOT_RETRIED = {"200", "invalid-json"}


# The backend a route names, and where its SDK finds the API under the fake's address.
UPSTREAMS = {"anthropic": (FakeAnthropic, ""), "openai": (FakeOpenAI, "/v1")}


@pytest.fixture(params=list(UPSTREAMS))
def upstream(request: pytest.FixtureRequest) -> Iterator[tuple[str, FakeAnthropic, str]]:
    """The backend's name, the fake upstream, the route's base_url."""
    fake_type, api_path = UPSTREAMS[request.param]
    fake = fake_type(
        latency=0.005, fault_rate=0.3, faults=ALL_FAULTS, timeout_delay=2.5, seed=11
    ).start()
    yield request.param, fake, f"{fake.base_url}{api_path}"
    fake.stop()


@pytest.mark.timeout(900)
def test_every_request_ends_once_with_the_error_its_last_fault_stands_for(
    start_server: Callable[..., Server],
    upstream: tuple[str, FakeAnthropic, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    long_run: bool,
) -> None:
    backend, fake_upstream, base_url = upstream
    monkeypatch.setenv("FAKE_UPSTREAM_KEY", KEY)
    routes = tmp_path / "routes.toml"
    routes.write_text(
        f"""
[[routes]]
model = "claude-*"
backend = "{backend}"
base_url = "{base_url}"
api_key_env = "FAKE_UPSTREAM_KEY"
max_concurrency = 32
max_retries = {MAX_RETRIES}
backoff_seconds = 0.01
timeout_seconds = 1.0
"""
    )
    server = start_server(config=str(routes), chunk_size="100")
    client = server.client()
    count = 3000 if long_run else 400
    batch = client.messages.batches.create(
        requests=[
            {
                "custom_id": f"r-{i}",
                "params": {
                    "model": "claude-haiku-4-5",
                    "max_tokens": 16,
                    "messages": [{"role": "user", "content": f"question {i}"}],
                },
            }
            for i in range(count)
        ]
    )
    ended = wait_until_ended(client, batch.id, timeout=300 if long_run else 90)

    results = list(client.messages.batches.results(batch.id))
    assert sorted(result.custom_id for result in results) == sorted(f"r-{i}" for i in range(count))
    by_type = Counter(result.result.type for result in results)
    counts = ended.request_counts
    assert (counts.succeeded, counts.errored, counts.processing) == (
        by_type["succeeded"],
        by_type["errored"],
        0,
    )
    assert counts.succeeded + counts.errored == count

    for result in results:
        attempts = fake_upstream.attempts(f"question {result.custom_id[2:]}")
        assert 1 <= len(attempts) <= MAX_RETRIES + 1, (result.custom_id, attempts)
        *retried, last = attempts
        assert not NOT_RETRIED & set(retried), f"{result.custom_id}: retried after {attempts}"
        if last == "200":
            assert result.result.type == "succeeded", (result.custom_id, attempts)
            assert result.result.message.content[0].text == f"echo: question {result.custom_id[2:]}"
        else:
            assert result.result.type == "errored", (result.custom_id, attempts)
            error = result.result.error.error
            assert error.type == ERROR_TYPE_OF_FAULT[last], attempts
            assert error.message.startswith("the upstream server"), "a mapped fault, not a crash"
            if last != "invalid-json":
                assert len(attempts) == MAX_RETRIES + 1, (
                    f"gave up early: {attempts} {result.result.error.error.message}"
                )

    assert fake_upstream.invalid == []
    seen = fake_upstream.answers()
    assert set(ALL_FAULTS) <= set(seen), f"every fault was injected: {seen}"
    print(
        f"{backend}: {count} requests, {sum(seen.values())} upstream calls, answers {dict(seen)};"
        f" {counts.succeeded} succeeded, {counts.errored} errored"
    )
