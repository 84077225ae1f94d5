"""The other direction of backends/translate_openai.py, for OpenAI batches on Messages
backends: a chat completions body → Messages params, and the Message → a `chat.completion`
that the official `openai` SDK's type accepts."""

from typing import Any

import msgspec
import orjson
import pytest
from openai.types.chat import ChatCompletion

from batchgate.backends.simulator import Simulator
from batchgate.backends.translate_openai import (
    DEFAULT_MAX_TOKENS,
    chat_completion_from_message,
    params_from_chat_request,
)
from batchgate.errors import RequestError
from batchgate.lifecycle.params import validate_params
from batchgate.lifecycle.simple_params import (
    decode_simple_chat,
    decode_simple_chat_line,
    decode_simple_chat_lines,
)


def chat(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": list(messages), **fields}


def test_system_and_developer_messages_become_the_system_prompt() -> None:
    params = params_from_chat_request(
        chat(
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
            {"role": "user", "content": "Hello"},
        )
    )
    assert params["system"] == "Be brief.\nUse French."
    assert params["messages"] == [{"role": "user", "content": "Hello"}]
    assert params["max_tokens"] == DEFAULT_MAX_TOKENS
    validate_params(params)


@pytest.mark.parametrize(
    ("fields", "max_tokens"),
    [({"max_tokens": 10}, 10), ({"max_completion_tokens": 20, "max_tokens": 10}, 20)],
)
def test_max_completion_tokens_wins_over_max_tokens(
    fields: dict[str, Any], max_tokens: int
) -> None:
    params = params_from_chat_request(chat({"role": "user", "content": "Hi"}, **fields))
    assert params["max_tokens"] == max_tokens


def test_sampling_stop_and_user_are_kept() -> None:
    params = params_from_chat_request(
        chat({"role": "user", "content": "Hi"}, temperature=0.2, top_p=0.9, stop="END", user="u1")
    )
    assert (params["temperature"], params["top_p"]) == (0.2, 0.9)
    assert params["stop_sequences"] == ["END"] and params["metadata"] == {"user_id": "u1"}


def test_tool_calls_and_results_become_tool_use_and_tool_result_blocks() -> None:
    params = params_from_chat_request(
        chat(
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": "Let me look.",
                "tool_calls": [
                    {
                        "id": "call.1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call.1", "content": "sunny"},
            {"role": "user", "content": "Thanks"},
            tools=[{"type": "function", "function": {"name": "get_weather"}}],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            parallel_tool_calls=False,
        )
    )
    assert params["messages"][1]["content"] == [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
    ]
    # The tool result and the next user message are one user turn, as Messages require.
    assert params["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
            {"type": "text", "text": "Thanks"},
        ],
    }
    assert params["tools"] == [
        {"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}
    ]
    assert params["tool_choice"] == {
        "type": "tool",
        "name": "get_weather",
        "disable_parallel_tool_use": True,
    }
    validate_params(params)


def test_images_by_data_url_or_link() -> None:
    params = params_from_chat_request(
        chat(
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                ],
            }
        )
    )
    sources = [block["source"] for block in params["messages"][0]["content"]]
    assert sources == [
        {"type": "base64", "media_type": "image/png", "data": "AAAA"},
        {"type": "url", "url": "https://example.com/a.png"},
    ]


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"n": 3}, "n:"),
        ({"logprobs": True}, "logprobs:"),
        ({"response_format": {"type": "json_object"}}, "response_format:"),
        ({"stream": True}, "stream:"),
    ],
)
def test_what_messages_cannot_ask_is_refused_naming_the_field(
    fields: dict[str, Any], named: str
) -> None:
    with pytest.raises(RequestError) as refused:
        params_from_chat_request(chat({"role": "user", "content": "Hi"}, **fields))
    assert refused.value.error_type == "invalid_request_error"
    assert refused.value.message.startswith(named)


def test_a_message_becomes_a_chat_completion_the_sdk_reads() -> None:
    message = {
        "id": "msg_abc",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "content": [
            {"type": "text", "text": "Checking."},
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": "get_weather",
                "input": {"city": "Paris"},
            },
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 2},
    }
    completion = ChatCompletion.model_validate(chat_completion_from_message(message))
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Checking."
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert call.function.arguments == '{"city": "Paris"}'  # type: ignore[union-attr]
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (12, 5)


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
    ],
)
def test_stop_reasons_become_finish_reasons(stop_reason: str, finish_reason: str) -> None:
    message = {
        "id": "msg_x",
        "model": "m",
        "content": [{"type": "text", "text": "ok"}],
        "stop_reason": stop_reason,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    assert chat_completion_from_message(message)["choices"][0]["finish_reason"] == finish_reason


@pytest.mark.parametrize(
    "body",
    [
        chat({"role": "user", "content": "Hello"}),
        chat(
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": "Use French."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Salut"},
            {"role": "user", "content": "Again"},
            max_completion_tokens=20,
            temperature=0.5,
            top_p=1,
        ),
        chat({"role": "user", "content": "Hi"}, max_tokens=7, temperature=None),
    ],
)
def test_a_chat_of_the_common_shape_decodes_to_the_params_its_translation_gives(
    body: dict[str, Any],
) -> None:
    simple = decode_simple_chat(orjson.dumps(body), DEFAULT_MAX_TOKENS)
    assert simple is not None
    # The same from the request's line of an input file, read in one pass, or with the lines
    # around it.
    assert decode_simple_chat_line(request_line(body), DEFAULT_MAX_TOKENS) == simple
    lines = request_line(body) + b"\n\n" + request_line(chat({"role": "user", "content": "Hi"}))
    assert decode_simple_chat_lines(lines, DEFAULT_MAX_TOKENS) == [
        simple,
        decode_simple_chat(
            orjson.dumps(chat({"role": "user", "content": "Hi"})), DEFAULT_MAX_TOKENS
        ),
    ]
    translated = validate_params(params_from_chat_request(body))
    assert msgspec.json.encode(simple) == msgspec.json.encode(translated)
    # So the simulator answers both alike, id included.
    assert Simulator().reply_simple(simple) == Simulator().reply(translated)


@pytest.mark.parametrize(
    "prompt",
    [
        pytest.param("Summarise this review in one sentence.", id="a plain echo"),
        pytest.param("Two  spaces\tand a tab", id="not single-spaced"),
        pytest.param("Use the weather tool " + "word " * 80, id="long, cut by max_tokens"),
    ],
)
def test_a_chat_answered_in_line_is_the_translation_of_the_simulators_message(
    prompt: str,
) -> None:
    body = chat({"role": "system", "content": "Be brief."}, {"role": "user", "content": prompt})
    body["max_tokens"] = 12
    simple = decode_simple_chat(orjson.dumps(body), DEFAULT_MAX_TOKENS)
    assert simple is not None
    direct, prompt_tokens, completion_tokens = Simulator().reply_chat_simple(simple)
    translated = chat_completion_from_message(Simulator().reply_simple(simple))
    # Byte for byte as the translation encodes, but for `created`: the clock's second, which may
    # tick between the two.
    created = orjson.loads(direct)["created"]
    assert direct == orjson.dumps({**translated, "created": created})
    usage = translated["usage"]
    assert prompt_tokens == usage["prompt_tokens"]
    assert completion_tokens == usage["completion_tokens"]


@pytest.mark.parametrize(
    "body",
    [
        chat({"role": "user", "content": "Hi"}, {"role": "user", "content": "there"}),
        chat({"role": "user", "content": "Hi"}, stop="END"),
        chat({"role": "user", "content": [{"type": "text", "text": "Hi"}]}),
        chat({"role": "system", "content": "Only a system prompt"}),
    ],
)
def test_any_other_chat_takes_the_general_path(body: dict[str, Any]) -> None:
    assert decode_simple_chat(orjson.dumps(body), DEFAULT_MAX_TOKENS) is None
    assert decode_simple_chat_line(request_line(body), DEFAULT_MAX_TOKENS) is None
    # So do the lines of an input file beside it, whatever their shape.
    plain = request_line(chat({"role": "user", "content": "Hi"}))
    lines = plain + b"\n" + request_line(body) + b"\n" + plain
    assert decode_simple_chat_lines(lines, DEFAULT_MAX_TOKENS) is None


def request_line(body: dict[str, Any]) -> bytes:
    """The body as a request line of a batch input file, `body` among its other keys."""
    line = {"custom_id": "r1", "body": body, "method": "POST", "url": "/v1/chat/completions"}
    return orjson.dumps(line)
