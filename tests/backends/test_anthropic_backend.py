"""AnthropicUpstreamBackend against a fake upstream that checks requests with the SDK's types."""

import asyncio
import warnings
from typing import Any

import pytest
from anthropic.types import Message

from backends.conftest import StartFake
from backends.fake_anthropic import (
    ALWAYS_BAD,
    ECHO_KEY_IN_ANSWER,
    ECHO_KEY_IN_ERROR,
    GARBLED,
    FakeAnthropic,
)
from batchgate.backends.anthropic_upstream import AnthropicUpstreamBackend
from batchgate.errors import RequestError
from batchgate.lifecycle.params import validate_params
from conftest import KEY, free_port

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def params(prompt: str = "What is the capital of France?", **fields: Any) -> dict[str, Any]:
    request = {
        "model": "claude-haiku-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": prompt}],
        **fields,
    }
    return validate_params(request)


def backend(fake: FakeAnthropic, **options: Any) -> AnthropicUpstreamBackend:
    return AnthropicUpstreamBackend(fake.base_url, **{"api_key": KEY, **options})


def reply(upstream: AnthropicUpstreamBackend, request: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(upstream.create_message(request))


def failure(
    upstream: AnthropicUpstreamBackend, request: dict[str, Any] | None = None
) -> RequestError:
    with pytest.raises(RequestError) as raised:
        asyncio.run(upstream.create_message(request or params()))
    return raised.value


def test_every_field_reaches_the_upstream_valid_and_its_message_comes_back(
    start_fake: StartFake,
) -> None:
    fake = start_fake()
    request = params(
        system=[{"type": "text", "text": "Be brief."}],
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "Sunny"},
                    {"type": "text", "text": "Thanks"},
                ],
            },
        ],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "auto"},
        stop_sequences=["END"],
        metadata={"user_id": "u-1"},
        temperature=0.2,
        top_p=0.9,
        top_k=5,
    )
    message = reply(backend(fake), request)
    assert fake.invalid == []
    Message.model_validate(message)
    assert message["model"] == "claude-haiku-4-5"
    assert message["content"] == [{"type": "text", "text": "echo: Thanks"}]
    assert message["usage"] == {
        "input_tokens": 12,
        "output_tokens": 7,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "service_tier": "batch",
    }


def test_upstream_model_replaces_the_requested_one(start_fake: StartFake) -> None:
    fake = start_fake()
    message = reply(backend(fake, upstream_model="qwen3-8b"), params())
    assert message["model"] == "qwen3-8b"


def test_max_tokens_too_large_for_the_sdk_without_streaming_is_sent(start_fake: StartFake) -> None:
    fake = start_fake()
    reply(backend(fake), params(max_tokens=64_000))
    assert fake.invalid == []


def test_a_model_the_sdk_calls_deprecated_is_sent_without_a_warning_each_request(
    start_fake: StartFake,
) -> None:
    # The upstream decides which models it serves (a local server may host any name); the SDK's
    # `messages.create` warned on every request of a batch for a model in its own tables.
    fake = start_fake()
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always", DeprecationWarning)
        message = reply(backend(fake), params(model="claude-opus-4-5"))
    assert message["model"] == "claude-opus-4-5"
    assert [
        str(warning.message) for warning in warned if warning.category is DeprecationWarning
    ] == []


def test_without_a_key_the_users_own_anthropic_key_is_never_sent(
    start_fake: StartFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-users-own")
    fake = start_fake(api_key="no-key")
    reply(backend(fake, api_key=None), params())
    assert [arrival.key for arrival in fake.arrivals] == ["no-key"]


@pytest.mark.parametrize(
    ("fault", "error_type", "retry_after"),
    [
        ("429-retry-after-ms", "rate_limit_error", 0.05),
        ("429-retry-after", "rate_limit_error", 0.05),
        ("429", "rate_limit_error", None),
        ("529", "overloaded_error", None),
        ("500", "api_error", None),
        ("reset", "api_error", None),
        ("timeout", "api_error", None),
    ],
)
def test_transient_failures_are_retryable(
    start_fake: StartFake, fault: str, error_type: str, retry_after: float | None
) -> None:
    fake = start_fake(fault_rate=1.0, faults=(fault,), timeout_delay=1.0)
    error = failure(backend(fake, timeout=0.3))
    assert (error.error_type, error.transient, error.retry_after) == (
        error_type,
        True,
        retry_after,
    )
    assert len(fake.arrivals) == 1, "the SDK must not retry on its own"


def test_a_refused_request_is_permanent_with_the_upstreams_words(start_fake: StartFake) -> None:
    fake = start_fake()
    error = failure(backend(fake), params(f"{ALWAYS_BAD} please"))
    assert (error.error_type, error.transient) == ("invalid_request_error", False)
    assert error.message == "the upstream server answered HTTP 400: this prompt is always refused"


def test_a_wrong_key_is_an_authentication_error(start_fake: StartFake) -> None:
    fake = start_fake()
    error = failure(backend(fake, api_key="sk-wrong"))
    assert (error.error_type, error.transient) == ("authentication_error", False)


def test_a_key_quoted_in_an_error_is_redacted(start_fake: StartFake) -> None:
    fake = start_fake()
    quoted = failure(backend(fake), params(ECHO_KEY_IN_ERROR))
    assert quoted.message == "the upstream server answered HTTP 400: not for key [redacted]"


@pytest.mark.parametrize("key", [KEY, "EMPTY", "k"])
def test_an_answer_that_quotes_the_key_comes_back_as_it_was(
    start_fake: StartFake, key: str
) -> None:
    fake = start_fake(api_key=key)
    message = reply(backend(fake, api_key=key), params(ECHO_KEY_IN_ANSWER))
    assert message["content"] == [{"type": "text", "text": f"echo: your key is {key}"}]


def test_an_answer_that_is_not_a_message_is_an_api_error(start_fake: StartFake) -> None:
    fake = start_fake()
    error = failure(backend(fake), params(GARBLED))
    assert (error.error_type, error.transient) == ("api_error", False)
    assert "unreadable answer" in error.message


def test_an_unreachable_upstream_is_transient() -> None:
    upstream = AnthropicUpstreamBackend(f"http://127.0.0.1:{free_port()}")
    error = failure(upstream)
    assert (error.error_type, error.transient) == ("api_error", True)
    assert "cannot be reached" in error.message
