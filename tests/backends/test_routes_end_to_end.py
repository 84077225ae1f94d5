"""Batches through `batchgate serve --config` to real and fake upstreams, with the official SDK."""

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import pytest
from anthropic.types import Message

from backends.conftest import LLAMA_MODEL_ALIAS, StartFake
from backends.fake_anthropic import (
    ALWAYS_BAD,
    ECHO_KEY_IN_ANSWER,
    ECHO_KEY_IN_ERROR,
    ECHO_KEY_WHEN_OVERLOADED,
    FakeAnthropic,
)
from backends.fake_openai import FakeOpenAI
from conftest import KEY, Server, wait_until_ended

StartServer = Callable[..., Server]
MODEL = "claude-haiku-4-5"
# Each backend that calls an upstream, the fake that speaks its API, and where under the fake's
# address its SDK finds that API.
UPSTREAMS = (("anthropic", FakeAnthropic, ""), ("openai", FakeOpenAI, "/v1"))


def request(custom_id: str, prompt: str, model: str = MODEL, **params: Any) -> Any:
    return {
        "custom_id": custom_id,
        "params": {
            "model": model,
            "max_tokens": 32,
            "messages": [{"role": "user", "content": prompt}],
            **params,
        },
    }


def serve_with_routes(
    start_server: StartServer, tmp_path: Path, routes: str, **settings: str
) -> Server:
    config = tmp_path / "routes.toml"
    config.write_text(routes)
    return start_server(config=str(config), **settings)


def results_by_id(client: anthropic.Anthropic, batch_id: str) -> dict[str, Any]:
    results = list(client.messages.batches.results(batch_id))
    counts = Counter(result.custom_id for result in results)
    assert [custom_id for custom_id, count in counts.items() if count > 1] == []
    return {result.custom_id: result.result for result in results}


def test_a_flaky_upstream_loses_and_doubles_no_request(
    start_server: StartServer,
    start_fake: StartFake,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = start_fake(latency=0.01, fault_rate=0.3, timeout_delay=1.0, seed=3)
    monkeypatch.setenv("FAKE_UPSTREAM_KEY", KEY)
    server = serve_with_routes(
        start_server,
        tmp_path,
        f"""
[[routes]]
model = "claude-*"
backend = "anthropic"
base_url = "{fake.base_url}"
api_key_env = "FAKE_UPSTREAM_KEY"
max_concurrency = 8
max_retries = 12
backoff_seconds = 0.02
timeout_seconds = 0.5
""",
    )
    client = server.client()
    requests = [request(f"ok-{i}", f"question {i}", temperature=0.5) for i in range(140)]
    requests += [request(f"bad-{i}", f"{ALWAYS_BAD} {i}") for i in range(5)]
    requests += [request(f"lost-{i}", "hello", model="mystery-model") for i in range(5)]
    batch = client.messages.batches.create(requests=requests)
    ended = wait_until_ended(client, batch.id, timeout=20)
    assert (ended.request_counts.succeeded, ended.request_counts.errored) == (140, 10)

    results = results_by_id(client, batch.id)
    assert len(results) == 150
    for i in range(140):
        result = results[f"ok-{i}"]
        assert result.type == "succeeded"
        Message.model_validate(result.message.model_dump())
        assert result.message.content[0].text == f"echo: question {i}"
        assert result.message.usage.service_tier == "batch"
    for i in range(5):
        refused = results[f"bad-{i}"]
        assert refused.type == "errored"
        assert refused.error.error.type == "invalid_request_error"
        assert refused.error.error.message.endswith("this prompt is always refused")
        assert fake.attempts(f"{ALWAYS_BAD} {i}") == ["400"], "a 400 is never retried"
        lost = results[f"lost-{i}"]
        assert lost.error.error.type == "not_found_error"
        assert "mystery-model" in lost.error.error.message
    assert fake.invalid == []
    answers = fake.answers()
    assert sum(answers.values()) - answers["200"] - answers["400"] >= 20, answers
    assert all(arrival.prompt != "hello" for arrival in fake.arrivals)


def upstream_routes(
    start_fake: StartFake, monkeypatch: pytest.MonkeyPatch, keys: tuple[str, ...], **options: object
) -> tuple[str, list[str]]:
    """A route per upstream backend and key, to a fake that takes that key: the routes file and
    the model names, `<backend>-<key index>`."""
    routes, models = "", []
    for backend, speaking, api_path in UPSTREAMS:
        for index, key in enumerate(keys):
            fake = start_fake(speaking, api_key=key)
            model = f"{backend}-{index}"
            monkeypatch.setenv(f"UPSTREAM_KEY_{index}", key)
            routes += f"""
[[routes]]
model = "{model}"
backend = "{backend}"
base_url = "{fake.base_url}{api_path}"
api_key_env = "UPSTREAM_KEY_{index}"
""" + "".join(f"{option} = {value}\n" for option, value in options.items())
            models.append(model)
    return routes, models


def test_answers_that_contain_a_placeholder_key_come_back_intact(
    start_server: StartServer,
    start_fake: StartFake,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What local servers run with; "k" is in every answer's JSON ("tokens").
    keys = ("EMPTY", "ollama", "k")
    routes, models = upstream_routes(start_fake, monkeypatch, keys)
    server = serve_with_routes(start_server, tmp_path, routes)
    client = server.client()
    requests = []
    for model, key in zip(models, keys * 2, strict=True):
        requests += [
            request(f"{model}-echo", f"tokens for {key}", model=model),
            request(f"{model}-quote", ECHO_KEY_IN_ANSWER, model=model),
        ]
    batch = client.messages.batches.create(requests=requests)
    assert wait_until_ended(client, batch.id).request_counts.succeeded == len(requests)

    results = results_by_id(client, batch.id)
    for model, key in zip(models, keys * 2, strict=True):
        assert results[f"{model}-echo"].message.content[0].text == f"echo: tokens for {key}"
        assert results[f"{model}-quote"].message.content[0].text == f"echo: your key is {key}"


def test_a_key_quoted_in_an_upstream_error_is_redacted_in_the_result_and_the_log(
    start_fake: StartFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-ant-api03-Zx81kQ0vNw3uTg5yLm2pRc7hJd4sFb9e"
    routes, models = upstream_routes(start_fake, monkeypatch, (key,), max_retries=0)
    config = tmp_path / "routes.toml"
    config.write_text(routes)
    server = Server(tmp_path)
    server.arguments = ["--config", str(config), "--log-level", "debug"]
    server.start()
    try:
        client = server.client()
        requests = []
        for model in models:
            requests += [
                request(f"{model}-refused", ECHO_KEY_IN_ERROR, model=model),
                request(f"{model}-overloaded", ECHO_KEY_WHEN_OVERLOADED, model=model),
            ]
        batch = client.messages.batches.create(requests=requests)
        assert wait_until_ended(client, batch.id).request_counts.errored == len(requests)
        results = results_by_id(client, batch.id)
    finally:
        server.stop()

    for model in models:
        refused = results[f"{model}-refused"].error.error
        assert refused.message == "the upstream server answered HTTP 400: not for key [redacted]"
        overloaded = results[f"{model}-overloaded"].error.error
        assert (
            overloaded.message
            == "the upstream server answered HTTP 529: overloaded, key [redacted]"
        )
    log = server.log.read_text()
    assert key not in log
    troubles = [line for line in log.splitlines() if "the upstream failed a call" in line]
    assert len(troubles) == len(models)
    assert all("overloaded, key [redacted]" in line for line in troubles)


def test_the_upstreams_429s_lower_the_concurrency(
    start_server: StartServer, start_fake: StartFake, tmp_path: Path
) -> None:
    # A server that takes 4 requests at a time and answers 429 beyond, without retry-after.
    fake = start_fake(latency=0.05, concurrency_limit=4, refusal_latency=0.02, api_key="no-key")
    server = serve_with_routes(
        start_server,
        tmp_path,
        f"""
[[routes]]
model = "*"
backend = "anthropic"
base_url = "{fake.base_url}"
max_concurrency = 16
backoff_seconds = 0.02
""",
    )
    client = server.client()
    requests = [request(f"r-{i}", f"question {i}") for i in range(150)]
    batch = client.messages.batches.create(requests=requests)
    assert wait_until_ended(client, batch.id, timeout=20).request_counts.succeeded == 150

    arrivals = fake.arrivals
    # Wider at first than it ends (the first 429 may halve 16 before all 16 are sent when the
    # machine is busy).
    assert max(arrival.in_flight for arrival in arrivals) > 6, "the route started wide open"
    later_half = arrivals[len(arrivals) // 2 :]
    assert max(arrival.in_flight for arrival in later_half) <= 6
    assert fake.answers()["429"] < len(arrivals) / 4


def test_a_small_batch_behind_a_large_one_on_a_slow_route_finishes_in_seconds(
    start_server: StartServer, tmp_path: Path
) -> None:
    # 4 at a time, 50 ms each: 80 requests a second, so the large batch would take minutes.
    server = serve_with_routes(
        start_server,
        tmp_path,
        '[[routes]]\nmodel = "*"\nbackend = "simulator"\nlatency_ms = 50\nmax_concurrency = 4\n',
    )
    client = server.client()
    large = client.messages.batches.create(
        requests=[request(f"large-{i}", f"question {i}") for i in range(20_000)]
    )
    while client.messages.batches.retrieve(large.id).request_counts.succeeded == 0:
        time.sleep(0.05)

    started = time.monotonic()
    small = client.messages.batches.create(
        requests=[request(f"small-{i}", f"question {i}") for i in range(10)]
    )
    assert wait_until_ended(client, small.id, timeout=15).request_counts.succeeded == 10
    assert time.monotonic() - started < 5

    # Canceling the large batch ends the wait of its thousands of queued requests at once.
    client.messages.batches.cancel(large.id)
    ended = wait_until_ended(client, large.id, timeout=15)
    assert ended.request_counts.canceled > 15_000


@pytest.mark.slow
def test_a_batch_runs_on_a_llama_cpp_server_through_an_openai_route(
    start_server: StartServer, tmp_path: Path, llama_server: str
) -> None:
    server = serve_with_routes(
        start_server,
        tmp_path,
        f"""
[[routes]]
model = "claude-*"
backend = "openai"
base_url = "{llama_server}"
upstream_model = "{LLAMA_MODEL_ALIAS}"
max_concurrency = 2
""",
    )
    client = server.client()
    batch = client.messages.batches.create(
        requests=[
            request("capital", "What is the capital of France?", temperature=0),
            request("color", "Name a color.", system="Answer in one word."),
        ]
    )
    wait_until_ended(client, batch.id, timeout=60)
    for result in results_by_id(client, batch.id).values():
        assert result.type == "succeeded"
        assert result.message.model == MODEL
        assert result.message.content[0].text.strip()


@pytest.mark.slow
def test_a_batch_runs_offline_on_the_local_smollm2_model(
    start_server: StartServer, tmp_path: Path, smollm2_path: str
) -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (batchgate[local])")
    server = serve_with_routes(
        start_server,
        tmp_path,
        f'[[routes]]\nmodel = "smollm2*"\nbackend = "local"\nmodel_path = "{smollm2_path}"\n',
    )
    client = server.client()
    batch = client.messages.batches.create(
        requests=[
            request("capital", "What is the capital of France?", model="smollm2-local"),
            request("story", "Tell me a story.", model="smollm2-local", max_tokens=4),
        ]
    )
    wait_until_ended(client, batch.id, timeout=60)
    results = results_by_id(client, batch.id)
    assert results["capital"].message.content[0].text.strip()
    assert results["story"].message.stop_reason == "max_tokens"
