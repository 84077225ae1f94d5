import base64
import io
import re
from typing import Any

import pypdf
import pytest
from anthropic.types import Message

from batchgate.backends.translate_openai import (
    chat_request_from_params,
    message_from_chat_completion,
)
from batchgate.errors import RequestError
from batchgate.lifecycle.params import validate_params

UPSTREAM = "smollm2-135m"
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
PNG_BASE64 = base64.b64encode(b"\x89PNG\r\n\x1a\nnot really a picture").decode()


def params(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "messages": list(messages) or [user("Hello")],
        **fields,
    }
    return validate_params(request)


def user(*content: str | dict[str, Any]) -> dict[str, Any]:
    return _turn("user", content)


def assistant(*content: str | dict[str, Any]) -> dict[str, Any]:
    return _turn("assistant", content)


def _turn(role: str, content: tuple[str | dict[str, Any], ...]) -> dict[str, Any]:
    if len(content) == 1 and isinstance(content[0], str):
        return {"role": role, "content": content[0]}
    blocks = [{"type": "text", "text": item} if isinstance(item, str) else item for item in content]
    return {"role": role, "content": blocks}


def chat(request_params: dict[str, Any]) -> dict[str, Any]:
    return chat_request_from_params(request_params, UPSTREAM)


def chat_messages(*messages: dict[str, Any], **fields: Any) -> list[dict[str, Any]]:
    translated: list[dict[str, Any]] = chat(params(*messages, **fields))["messages"]
    return translated


def refusal_of(request_params: dict[str, Any]) -> str:
    """The message of the invalid_request_error that translating `request_params` raises."""
    with pytest.raises(RequestError) as raised:
        chat(request_params)
    assert raised.value.error_type == "invalid_request_error"
    assert not raised.value.transient
    return raised.value.message


def assert_untranslatable(request_params: dict[str, Any], path: str) -> None:
    message = refusal_of(request_params)
    assert message.startswith(f"{path}: ")
    assert "cannot be sent to an OpenAI-compatible backend because " in message


def tool_result(tool_use_id: str, content: Any = None, **fields: Any) -> dict[str, Any]:
    block = {"type": "tool_result", "tool_use_id": tool_use_id, **fields}
    if content is not None:
        block["content"] = content
    return block


def tool_use(tool_use_id: str, name: str, tool_input: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": tool_use_id, "name": name, "input": tool_input}


def document(source: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"type": "document", "source": source, **fields}


def base64_source(media_type: str, data: bytes) -> dict[str, Any]:
    return {"type": "base64", "media_type": media_type, "data": base64.b64encode(data).decode()}


def pdf_with_text(text: str) -> bytes:
    """A one-page PDF whose text layer reads `text`."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792]"
        b" /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
    ]
    pdf = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref_at = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref_at,
    )
    return bytes(pdf)


def blank_pdf() -> bytes:
    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=612, height=792)
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()


# Anthropic params -> chat completions request


def test_minimal_request_names_the_upstream_model_and_sends_max_tokens() -> None:
    assert chat(params()) == {
        "model": UPSTREAM,
        "messages": [{"role": "user", "content": "Hello"}],
        "max_tokens": 256,
    }


def test_sampling_stop_sequences_and_user_id_are_sent() -> None:
    request = chat(
        params(
            temperature=0.2,
            top_p=0.9,
            top_k=40,
            stop_sequences=["END", "\n\nHuman:"],
            metadata={"user_id": "user-7"},
        )
    )
    assert request["temperature"] == 0.2
    assert request["top_p"] == 0.9
    assert request["top_k"] == 40
    assert request["stop"] == ["END", "\n\nHuman:"]
    assert request["user"] == "user-7"


def test_unset_optional_fields_are_left_out() -> None:
    request = chat(params(metadata={"user_id": None}, stop_sequences=[], tools=[]))
    assert set(request) == {"model", "messages", "max_tokens"}


def test_system_string_becomes_the_first_message() -> None:
    assert chat_messages(system="Be brief.")[0] == {"role": "system", "content": "Be brief."}


def test_system_text_blocks_become_one_system_message() -> None:
    system = [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Answer in French.", "cache_control": {"type": "ephemeral"}},
    ]
    messages = chat_messages(system=system)
    assert messages[0] == {"role": "system", "content": "Be brief.\nAnswer in French."}
    assert [message["role"] for message in messages] == ["system", "user"]


def test_empty_system_sends_no_system_message() -> None:
    assert chat_messages(system="") == [{"role": "user", "content": "Hello"}]


def test_text_blocks_of_one_turn_become_one_string() -> None:
    assert chat_messages(user("First.", "Second.")) == [
        {"role": "user", "content": "First.\nSecond."}
    ]


def test_consecutive_turns_of_one_role_are_merged() -> None:
    messages = chat_messages(user("One."), user("Two."), assistant("Three."), user("Four."))
    assert messages == [
        {"role": "user", "content": "One.\nTwo."},
        {"role": "assistant", "content": "Three."},
        {"role": "user", "content": "Four."},
    ]


def test_base64_image_becomes_a_data_url_beside_the_text() -> None:
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG_BASE64},
    }
    [message] = chat_messages(user("What is this?", image))
    assert message == {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_BASE64}"}},
        ],
    }


def test_url_image_becomes_an_image_url() -> None:
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
    [message] = chat_messages(user(image))
    assert message["content"] == [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
    ]


def test_pdf_document_becomes_its_extracted_text_after_title_and_context() -> None:
    pdf = document(
        base64_source("application/pdf", pdf_with_text("Quarterly revenue grew 12 percent")),
        title="Report",
        context="Internal only",
    )
    [message] = chat_messages(user(pdf, "Summarize."))
    assert message["role"] == "user"
    assert message["content"].startswith("Report\n\nInternal only\n\n")
    assert "Quarterly revenue grew 12 percent" in message["content"]
    assert message["content"].endswith("\nSummarize.")


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(
            {"type": "text", "media_type": "text/plain", "data": "Plain words."}, id="text"
        ),
        pytest.param(base64_source("text/plain", b"Plain words."), id="base64 text"),
        pytest.param(
            {"type": "content", "content": [{"type": "text", "text": "Plain words."}]},
            id="content",
        ),
    ],
)
def test_plain_text_documents_become_text(source: dict[str, Any]) -> None:
    assert chat_messages(user(document(source))) == [{"role": "user", "content": "Plain words."}]


def test_tools_become_functions() -> None:
    bare_tool = {"name": "now", "input_schema": {"type": "object"}, "type": "custom"}
    request = chat(params(tools=[WEATHER_TOOL, bare_tool]))
    assert request["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": WEATHER_TOOL["input_schema"],
                "description": "Current weather in a city.",
            },
        },
        {"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}},
    ]
    assert "tool_choice" not in request
    assert "parallel_tool_calls" not in request


@pytest.mark.parametrize(
    ("tool_choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        (
            {"type": "tool", "name": "get_weather"},
            {"type": "function", "function": {"name": "get_weather"}},
        ),
    ],
)
def test_tool_choice(tool_choice: dict[str, Any], expected: object) -> None:
    request = chat(params(tools=[WEATHER_TOOL], tool_choice=tool_choice))
    assert request["tool_choice"] == expected
    assert "parallel_tool_calls" not in request


def test_disable_parallel_tool_use_turns_parallel_tool_calls_off() -> None:
    choice = {"type": "any", "disable_parallel_tool_use": True}
    request = chat(params(tools=[WEATHER_TOOL], tool_choice=choice))
    assert request["tool_choice"] == "required"
    assert request["parallel_tool_calls"] is False


def test_tool_choice_without_tools_is_not_sent() -> None:
    assert "tool_choice" not in chat(params(tool_choice={"type": "auto"}))


def test_assistant_tool_use_becomes_tool_calls_with_json_arguments() -> None:
    messages = chat_messages(
        user("Weather in Paris and Oslo?"),
        assistant(
            "Checking both.",
            tool_use("toolu_01", "get_weather", {"city": "Paris"}),
            tool_use("toolu_02", "get_weather", {"city": "Oslo", "units": "°C"}),
        ),
        user(tool_result("toolu_01", "18°C"), tool_result("toolu_02", "9°C")),
    )
    assert messages[1] == {
        "role": "assistant",
        "content": "Checking both.",
        "tool_calls": [
            {
                "id": "toolu_01",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            },
            {
                "id": "toolu_02",
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "arguments": '{"city": "Oslo", "units": "°C"}',
                },
            },
        ],
    }


def test_assistant_turn_of_only_tool_use_has_no_content() -> None:
    messages = chat_messages(
        user("Weather?"),
        assistant(tool_use("toolu_01", "get_weather", {"city": "Paris"})),
        user(tool_result("toolu_01", "18°C")),
    )
    assert messages[1]["content"] is None
    assert len(messages[1]["tool_calls"]) == 1


def test_tool_results_become_tool_messages_in_order_then_the_user_text() -> None:
    messages = chat_messages(
        user("Weather?"),
        assistant(
            tool_use("toolu_01", "get_weather", {"city": "Paris"}),
            tool_use("toolu_02", "get_weather", {"city": "Oslo"}),
            tool_use("toolu_03", "get_weather", {"city": "Rome"}),
        ),
        user(
            tool_result("toolu_01", "18°C"),
            tool_result(
                "toolu_02", [{"type": "text", "text": "9°C"}, {"type": "text", "text": "rain"}]
            ),
            tool_result("toolu_03"),
            "Which is warmest?",
        ),
    )
    assert messages[2:] == [
        {"role": "tool", "tool_call_id": "toolu_01", "content": "18°C"},
        {"role": "tool", "tool_call_id": "toolu_02", "content": "9°C\nrain"},
        {"role": "tool", "tool_call_id": "toolu_03", "content": ""},
        {"role": "user", "content": "Which is warmest?"},
    ]


def test_failed_tool_result_keeps_its_error_visible() -> None:
    messages = chat_messages(
        user("Weather?"),
        assistant(tool_use("toolu_01", "get_weather", {"city": "Atlantis"})),
        user(tool_result("toolu_01", "unknown city", is_error=True)),
    )
    assert messages[2] == {
        "role": "tool",
        "tool_call_id": "toolu_01",
        "content": "Error: unknown city",
    }


def test_document_inside_a_tool_result_becomes_text() -> None:
    source = {"type": "text", "media_type": "text/plain", "data": "Forecast: sun."}
    messages = chat_messages(
        user("Forecast?"),
        assistant(tool_use("toolu_01", "get_weather", {"city": "Paris"})),
        user(tool_result("toolu_01", [document(source)])),
    )
    assert messages[2]["content"] == "Forecast: sun."


def test_thinking_disabled_and_service_tier_are_accepted() -> None:
    request = chat(params(thinking={"type": "disabled"}, service_tier="auto", stream=False))
    assert set(request) == {"model", "messages", "max_tokens"}


# Requests that have no OpenAI form


def test_enabled_thinking_is_untranslatable() -> None:
    assert_untranslatable(params(thinking={"type": "enabled", "budget_tokens": 1024}), "thinking")


def test_server_tool_is_untranslatable() -> None:
    tools = [WEATHER_TOOL, {"type": "web_search_20250305", "name": "web_search"}]
    assert_untranslatable(params(tools=tools), "tools.1")


def test_unknown_parameter_is_untranslatable() -> None:
    assert_untranslatable(params(container="container_01"), "container")


def test_final_assistant_turn_is_untranslatable() -> None:
    assert_untranslatable(params(user("Hi"), assistant("Well,")), "messages.1")


def test_image_inside_a_tool_result_is_untranslatable() -> None:
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG_BASE64},
    }
    request = params(
        user("Chart?"),
        assistant(tool_use("toolu_01", "chart", {})),
        user(tool_result("toolu_01", [image])),
    )
    assert_untranslatable(request, "messages.2.content.0.content.0")


def test_image_from_the_files_api_is_untranslatable() -> None:
    image = {"type": "image", "source": {"type": "file", "file_id": "file_01"}}
    assert_untranslatable(params(user(image)), "messages.0.content.0.source")


@pytest.mark.parametrize(
    ("block", "path"),
    [
        pytest.param(
            document(base64_source("application/msword", b"DOC")),
            "messages.0.content.0.source.media_type",
            id="word document",
        ),
        pytest.param(
            document({"type": "url", "url": "https://example.com/a.pdf"}),
            "messages.0.content.0.source",
            id="pdf url",
        ),
        pytest.param(
            document(
                {"type": "text", "media_type": "text/plain", "data": "x"},
                citations={"enabled": True},
            ),
            "messages.0.content.0.citations",
            id="document citations",
        ),
        pytest.param(
            document(base64_source("application/pdf", blank_pdf())),
            "messages.0.content.0.source.data",
            id="pdf without text",
        ),
        pytest.param(
            {"type": "search_result", "source": "s", "title": "t", "content": []},
            "messages.0.content.0",
            id="search result",
        ),
    ],
)
def test_untranslatable_user_content(block: dict[str, Any], path: str) -> None:
    assert_untranslatable(params(user(block)), path)


def test_thinking_block_in_history_is_untranslatable() -> None:
    thinking = {"type": "thinking", "thinking": "Hmm.", "signature": "sig"}
    request = params(user("Hi"), assistant(thinking, "Hello!"), user("Again"))
    assert_untranslatable(request, "messages.1.content.0")


def test_text_with_citations_is_untranslatable() -> None:
    cited = {
        "type": "text",
        "text": "Revenue grew.",
        "citations": [{"type": "char_location", "cited_text": "grew", "document_index": 0}],
    }
    request = params(user("Hi"), assistant(cited), user("And?"))
    assert_untranslatable(request, "messages.1.content.0.citations")


def test_malformed_document_data_is_an_invalid_request() -> None:
    broken_base64 = {"type": "base64", "media_type": "application/pdf", "data": "%%%"}
    assert "Invalid base64" in refusal_of(params(user(document(broken_base64))))
    not_a_pdf = base64_source("application/pdf", b"plain bytes")
    assert "the PDF cannot be read" in refusal_of(params(user(document(not_a_pdf))))
    not_utf8 = base64_source("text/plain", b"\xff\xfe")
    assert "must be UTF-8" in refusal_of(params(user(document(not_utf8))))


# Chat completion -> Anthropic Message


def completion(
    content: str | None = "Hello there.",
    finish_reason: str | None = "stop",
    tool_calls: list[dict[str, Any]] | None = None,
    **choice_extras: Any,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-7f3a.b9",
        "object": "chat.completion",
        "model": UPSTREAM,
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish_reason, **choice_extras}
        ],
        "usage": {"prompt_tokens": 21, "completion_tokens": 4, "total_tokens": 25},
    }


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def message_for(chat_completion: dict[str, Any], **fields: Any) -> dict[str, Any]:
    message = message_from_chat_completion(chat_completion, params(**fields))
    Message.model_validate(message)
    return message


def test_text_completion_becomes_a_message() -> None:
    assert message_for(completion()) == {
        "id": "msg_chatcmpl-7f3a_b9",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "Hello there."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 21,
            "output_tokens": 4,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "batch",
        },
    }


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
    ],
)
def test_finish_reason_becomes_stop_reason(finish_reason: str | None, stop_reason: str) -> None:
    assert message_for(completion(finish_reason=finish_reason))["stop_reason"] == stop_reason


@pytest.mark.parametrize("finish_reason", ["tool_calls", "function_call", "stop"])
def test_tool_calls_become_tool_use_blocks(finish_reason: str) -> None:
    calls = [
        tool_call("call_0:a", "get_weather", '{"city": "Paris"}'),
        tool_call("call_1", "now", ""),
    ]
    message = message_for(completion("Checking.", finish_reason, calls), tools=[WEATHER_TOOL])
    assert message["content"] == [
        {"type": "text", "text": "Checking."},
        {
            "type": "tool_use",
            "id": "toolu_call_0_a",
            "name": "get_weather",
            "input": {"city": "Paris"},
        },
        {"type": "tool_use", "id": "toolu_call_1", "name": "now", "input": {}},
    ]
    assert message["stop_reason"] == "tool_use"


def test_tool_call_cut_off_by_the_token_limit_reports_max_tokens() -> None:
    calls = [tool_call("call_0", "get_weather", '{"city": "Paris"}')]
    assert message_for(completion(None, "length", calls))["stop_reason"] == "max_tokens"


def test_tool_use_ids_round_trip_to_the_upstream_call_ids() -> None:
    calls = [tool_call("call_0", "get_weather", '{"city": "Paris"}')]
    [block] = message_for(completion(None, "tool_calls", calls))["content"]
    messages = chat_messages(
        user("Weather?"), assistant(block), user(tool_result(block["id"], "18°C"))
    )
    assert messages[1]["tool_calls"][0]["id"] == messages[2]["tool_call_id"] == block["id"]


def test_tool_call_arguments_that_are_not_a_json_object_are_an_api_error() -> None:
    for arguments in ('{"city": ', "[1, 2]"):
        calls = [tool_call("call_0", "get_weather", arguments)]
        with pytest.raises(RequestError) as raised:
            message_for(completion(None, "tool_calls", calls))
        assert raised.value.error_type == "api_error"
        assert "get_weather" in raised.value.message


def test_openai_refusal_becomes_a_refusal() -> None:
    chat_completion = completion(None)
    chat_completion["choices"][0]["message"]["refusal"] = "I can't help with that."
    message = message_for(chat_completion)
    assert message["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert message["stop_reason"] == "refusal"


@pytest.mark.parametrize("extra", ["stop_reason", "matched_stop"])
def test_stop_sequence_reported_by_the_server_becomes_stop_sequence(extra: str) -> None:
    chat_completion = completion("One, two,")
    chat_completion["choices"][0][extra] = "three"
    message = message_for(chat_completion, stop_sequences=["four", "three"])
    assert message["stop_reason"] == "stop_sequence"
    assert message["stop_sequence"] == "three"
    assert message["content"] == [{"type": "text", "text": "One, two,"}]


def test_stop_sequence_left_in_the_text_is_detected_and_removed() -> None:
    message = message_for(completion("One, two, three"), stop_sequences=["three"])
    assert message["stop_reason"] == "stop_sequence"
    assert message["stop_sequence"] == "three"
    assert message["content"] == [{"type": "text", "text": "One, two, "}]


@pytest.mark.parametrize(
    "choice_extras",
    [
        pytest.param({}, id="no hint"),
        pytest.param({"stop_reason": 2}, id="stop token id"),
        pytest.param({"stop_reason": "never requested"}, id="unrequested string"),
    ],
)
def test_stop_without_a_known_stop_sequence_is_end_turn(choice_extras: dict[str, Any]) -> None:
    message = message_for(completion("One, two,", **choice_extras), stop_sequences=["three"])
    assert message["stop_reason"] == "end_turn"
    assert message["stop_sequence"] is None


def test_stop_sequences_are_not_looked_for_when_the_token_limit_ended_the_text() -> None:
    message = message_for(completion("One, two, three", "length"), stop_sequences=["three"])
    assert message["stop_reason"] == "max_tokens"
    assert message["content"] == [{"type": "text", "text": "One, two, three"}]


def test_empty_completion_has_no_content_blocks() -> None:
    assert message_for(completion(""))["content"] == []


def test_missing_id_and_usage_still_make_a_valid_message() -> None:
    chat_completion = completion()
    del chat_completion["id"], chat_completion["usage"]
    message = message_for(chat_completion)
    assert re.fullmatch(r"msg_[0-9a-f]{32}", message["id"])
    assert message["usage"]["input_tokens"] == message["usage"]["output_tokens"] == 0


def test_completion_without_choices_is_an_api_error() -> None:
    with pytest.raises(RequestError) as raised:
        message_for({"id": "chatcmpl-1", "choices": []})
    assert raised.value.error_type == "api_error"
