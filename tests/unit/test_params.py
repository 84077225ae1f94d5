import copy
from typing import Any

import pytest

from batchgate.errors import RequestError
from batchgate.lifecycle.params import validate_params


def minimal() -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Hello"}],
    }


def with_changes(**changes: Any) -> dict[str, Any]:
    params = minimal()
    params.update(changes)
    return params


def without(field: str) -> dict[str, Any]:
    params = minimal()
    del params[field]
    return params


def user_blocks(*blocks: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": list(blocks)}]


WEATHER_TOOL = {
    "name": "get_weather",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}},
}


def error_of(params: object) -> str:
    with pytest.raises(RequestError) as raised:
        validate_params(params)
    assert raised.value.error_type == "invalid_request_error"
    return raised.value.message


VALID = [
    pytest.param(minimal(), id="minimal"),
    pytest.param(with_changes(stream=False), id="stream false"),
    pytest.param(with_changes(system="Be brief."), id="system string"),
    pytest.param(
        with_changes(system=[{"type": "text", "text": "Be brief.", "cache_control": {}}]),
        id="system blocks",
    ),
    pytest.param(with_changes(stop_sequences=["END", "\n\nHuman:"]), id="stop_sequences"),
    pytest.param(with_changes(temperature=0, top_p=1.0, top_k=0), id="sampling bounds"),
    pytest.param(with_changes(temperature=0.7, top_p=0.9, top_k=40), id="sampling"),
    pytest.param(with_changes(metadata={"user_id": "u-1"}), id="metadata"),
    pytest.param(with_changes(metadata={"user_id": None}), id="metadata null user"),
    pytest.param(with_changes(tools=[WEATHER_TOOL]), id="custom tool"),
    pytest.param(
        with_changes(tools=[{**WEATHER_TOOL, "type": "custom"}], tool_choice={"type": "any"}),
        id="explicit custom tool",
    ),
    pytest.param(
        with_changes(
            tools=[WEATHER_TOOL, {"type": "web_search_20250305", "name": "web_search"}],
            tool_choice={"type": "tool", "name": "web_search"},
        ),
        id="server tool",
    ),
    pytest.param(with_changes(tool_choice={"type": "auto"}), id="auto without tools"),
    pytest.param(with_changes(tool_choice={"type": "none"}), id="none without tools"),
    pytest.param(with_changes(thinking={"type": "enabled", "budget_tokens": 2048}), id="thinking"),
    pytest.param(
        with_changes(service_tier="auto", some_future_field={"x": [1, 2]}),
        id="unknown fields pass through",
    ),
    pytest.param(
        with_changes(
            messages=[
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello! How can I help?"},
                {"role": "user", "content": "Tell me more."},
            ]
        ),
        id="conversation",
    ),
    pytest.param(
        with_changes(
            messages=user_blocks(
                {"type": "text", "text": "Look:"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png"}},
                {"type": "document", "source": {"type": "url", "url": "https://x/y.pdf"}},
                {"type": "search_result", "source": "s", "title": "t", "content": []},
                {"type": "container_upload", "file_id": "f"},
            )
        ),
        id="attachments",
    ),
    pytest.param(
        with_changes(
            messages=[
                {"role": "user", "content": "Weather?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                        {"type": "redacted_thinking", "data": "opaque"},
                        {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}},
                        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search"},
                        {"type": "web_search_tool_result", "tool_use_id": "s", "content": []},
                        {"type": "some_new_tool_result", "tool_use_id": "s", "content": []},
                    ],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "4"}],
                },
            ]
        ),
        id="tool and thinking blocks",
    ),
]


@pytest.mark.parametrize("params", VALID)
def test_valid_params_are_returned_unchanged(params: dict[str, Any]) -> None:
    before = copy.deepcopy(params)

    assert validate_params(params) is params
    assert params == before


INVALID = [
    pytest.param("not an object", "params: Input should be a valid dictionary", id="not object"),
    pytest.param(without("model"), "model: Field required", id="model missing"),
    pytest.param(with_changes(model=7), "model: Input should be a valid string", id="model type"),
    pytest.param(
        with_changes(model=""), "model: String should have at least 1 character", id="model empty"
    ),
    pytest.param(without("max_tokens"), "max_tokens: Field required", id="max_tokens missing"),
    pytest.param(
        with_changes(max_tokens=0),
        "max_tokens: Input should be greater than or equal to 1",
        id="max_tokens zero",
    ),
    pytest.param(
        with_changes(max_tokens=True),
        "max_tokens: Input should be a valid integer",
        id="max_tokens bool",
    ),
    pytest.param(
        with_changes(max_tokens=10.5),
        "max_tokens: Input should be a valid integer",
        id="max_tokens float",
    ),
    pytest.param(
        with_changes(max_tokens="10"),
        "max_tokens: Input should be a valid integer",
        id="max_tokens string",
    ),
    pytest.param(without("messages"), "messages: Field required", id="messages missing"),
    pytest.param(
        with_changes(messages="hi"), "messages: Input should be a valid list", id="messages type"
    ),
    pytest.param(
        with_changes(messages=[]),
        "messages: List should have at least 1 item after validation, not 0",
        id="messages empty",
    ),
    pytest.param(
        with_changes(messages=["hi"]),
        "messages.0: Input should be a valid dictionary",
        id="message type",
    ),
    pytest.param(
        with_changes(messages=[{"content": "hi"}]),
        "messages.0.role: Field required",
        id="role missing",
    ),
    pytest.param(
        with_changes(
            messages=[{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]
        ),
        "messages.1.role: Input should be 'user' or 'assistant'",
        id="role unknown",
    ),
    pytest.param(
        with_changes(messages=[{"role": "user"}]),
        "messages.0.content: Field required",
        id="content missing",
    ),
    pytest.param(
        with_changes(messages=[{"role": "user", "content": 5}]),
        "messages.0.content: Input should be a valid string or list",
        id="content type",
    ),
    pytest.param(
        with_changes(messages=[{"role": "user", "content": []}]),
        "messages.0.content: List should have at least 1 item after validation, not 0",
        id="content empty",
    ),
    pytest.param(
        with_changes(messages=user_blocks("text")),
        "messages.0.content.0: Input should be a valid dictionary",
        id="block type",
    ),
    pytest.param(
        with_changes(messages=user_blocks({"text": "hi"})),
        "messages.0.content.0.type: Field required",
        id="block type missing",
    ),
    pytest.param(
        with_changes(
            messages=[
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": [{"type": "txet", "text": "b"}]},
            ]
        ),
        "messages.1.content.0.type: Input tag 'txet' found using 'type' does not match any of "
        "the expected tags",
        id="block type unknown",
    ),
    pytest.param(
        with_changes(messages=user_blocks({"type": "text"})),
        "messages.0.content.0.text: Field required",
        id="text missing",
    ),
    pytest.param(
        with_changes(messages=user_blocks({"type": "text", "text": ["a"]})),
        "messages.0.content.0.text: Input should be a valid string",
        id="text type",
    ),
    pytest.param(
        with_changes(messages=user_blocks({"type": "text", "text": "a"}, {"type": "image"})),
        "messages.0.content.1.source: Field required",
        id="image source missing",
    ),
    pytest.param(
        with_changes(messages=user_blocks({"type": "document", "source": "https://x"})),
        "messages.0.content.0.source: Input should be a valid dictionary",
        id="document source type",
    ),
    pytest.param(
        with_changes(messages=user_blocks({"type": "image", "source": {"data": "..."}})),
        "messages.0.content.0.source.type: Field required",
        id="image source type missing",
    ),
    pytest.param(
        with_changes(messages=user_blocks({"type": "tool_use", "id": "t", "name": "n"})),
        "messages.0.content.0.input: Field required",
        id="tool_use input missing",
    ),
    pytest.param(
        with_changes(
            messages=user_blocks({"type": "tool_use", "id": "t", "name": "n", "input": "{}"})
        ),
        "messages.0.content.0.input: Input should be a valid dictionary",
        id="tool_use input type",
    ),
    pytest.param(
        with_changes(messages=user_blocks({"type": "tool_use", "name": "n", "input": {}})),
        "messages.0.content.0.id: Field required",
        id="tool_use id missing",
    ),
    pytest.param(
        with_changes(messages=user_blocks({"type": "tool_result", "content": "4"})),
        "messages.0.content.0.tool_use_id: Field required",
        id="tool_result id missing",
    ),
    pytest.param(
        with_changes(
            messages=user_blocks({"type": "tool_result", "tool_use_id": "t", "content": 4})
        ),
        "messages.0.content.0.content: Input should be a valid string or list",
        id="tool_result content type",
    ),
    pytest.param(
        with_changes(
            messages=user_blocks(
                {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text"}]}
            )
        ),
        "messages.0.content.0.content.0.text: Field required",
        id="tool_result content block",
    ),
    pytest.param(
        with_changes(stream=True), "stream: batch requests cannot be streamed", id="stream"
    ),
    pytest.param(
        with_changes(stream="yes"), "stream: Input should be a valid boolean", id="stream type"
    ),
    pytest.param(
        with_changes(system=5), "system: Input should be a valid string or list", id="system type"
    ),
    pytest.param(
        with_changes(system=[{"type": "image", "source": {"type": "url"}}]),
        "system.0.type: Input should be 'text'",
        id="system block type",
    ),
    pytest.param(
        with_changes(system=[{"type": "text", "text": "a"}, {"type": "text"}]),
        "system.1.text: Input should be a valid string",
        id="system block text",
    ),
    pytest.param(
        with_changes(stop_sequences="END"),
        "stop_sequences: Input should be a valid list",
        id="stop_sequences type",
    ),
    pytest.param(
        with_changes(stop_sequences=["END", 3]),
        "stop_sequences.1: Input should be a valid string",
        id="stop_sequence type",
    ),
    pytest.param(
        with_changes(stop_sequences=[" "]),
        "stop_sequences.0: String should contain non-whitespace characters",
        id="stop_sequence blank",
    ),
    pytest.param(
        with_changes(temperature="hot"),
        "temperature: Input should be a valid number",
        id="temperature type",
    ),
    pytest.param(
        with_changes(temperature=1.5),
        "temperature: Input should be less than or equal to 1",
        id="temperature high",
    ),
    pytest.param(
        with_changes(temperature=float("nan")),
        "temperature: Input should be less than or equal to 1",
        id="temperature nan",
    ),
    pytest.param(
        with_changes(top_p=-0.1),
        "top_p: Input should be greater than or equal to 0",
        id="top_p low",
    ),
    pytest.param(
        with_changes(top_p=False), "top_p: Input should be a valid number", id="top_p bool"
    ),
    pytest.param(
        with_changes(top_k=-1), "top_k: Input should be greater than or equal to 0", id="top_k low"
    ),
    pytest.param(
        with_changes(top_k=2.5), "top_k: Input should be a valid integer", id="top_k type"
    ),
    pytest.param(
        with_changes(metadata="m"), "metadata: Input should be a valid dictionary", id="metadata"
    ),
    pytest.param(
        with_changes(metadata={"user_id": 42}),
        "metadata.user_id: Input should be a valid string",
        id="metadata user_id",
    ),
    pytest.param(
        with_changes(tools={"name": "x"}), "tools: Input should be a valid list", id="tools type"
    ),
    pytest.param(
        with_changes(tools=["get_weather"]),
        "tools.0: Input should be a valid dictionary",
        id="tool type",
    ),
    pytest.param(
        with_changes(tools=[WEATHER_TOOL, {"input_schema": {}}]),
        "tools.1.name: Field required",
        id="tool name missing",
    ),
    pytest.param(
        with_changes(tools=[{"name": "", "input_schema": {}}]),
        "tools.0.name: String should have at least 1 character",
        id="tool name empty",
    ),
    pytest.param(
        with_changes(tools=[{"name": "x"}]),
        "tools.0.input_schema: Field required",
        id="custom tool schema missing",
    ),
    pytest.param(
        with_changes(tools=[{"type": "custom", "name": "x", "input_schema": "{}"}]),
        "tools.0.input_schema: Input should be a valid dictionary",
        id="custom tool schema type",
    ),
    pytest.param(
        with_changes(tool_choice="auto"),
        "tool_choice: Input should be a valid dictionary",
        id="tool_choice type",
    ),
    pytest.param(
        with_changes(tool_choice={}), "tool_choice.type: Field required", id="tool_choice empty"
    ),
    pytest.param(
        with_changes(tools=[WEATHER_TOOL], tool_choice={"type": "required"}),
        "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'",
        id="tool_choice unknown",
    ),
    pytest.param(
        with_changes(tools=[WEATHER_TOOL], tool_choice={"type": "tool"}),
        "tool_choice.name: Field required",
        id="tool_choice name missing",
    ),
    pytest.param(
        with_changes(tools=[WEATHER_TOOL], tool_choice={"type": "tool", "name": "get_time"}),
        "tool_choice.name: Tool 'get_time' not found in tools",
        id="tool_choice unknown tool",
    ),
    pytest.param(
        with_changes(tool_choice={"type": "any"}),
        "tool_choice: tool_choice may only be specified while providing tools",
        id="tool_choice without tools",
    ),
    pytest.param(
        with_changes(thinking="on"), "thinking: Input should be a valid dictionary", id="thinking"
    ),
]


@pytest.mark.parametrize(("params", "message"), INVALID)
def test_invalid_params_name_the_field(params: object, message: str) -> None:
    assert error_of(params) == message


def test_missing_required_fields_are_reported_before_other_problems() -> None:
    params = with_changes(stream=True)
    del params["max_tokens"]

    assert error_of(params) == "max_tokens: Field required"
