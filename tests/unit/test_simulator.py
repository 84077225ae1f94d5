import asyncio
import re
from collections import Counter
from typing import Any

import pytest
from anthropic.types import Message

from batchgate.backends import simulator
from batchgate.backends.simulator import Simulator
from batchgate.errors import RequestError
from batchgate.lifecycle.params import validate_params


def request(text: str | list[dict[str, Any]] = "Hello there", **fields: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": text}],
    }
    params.update(fields)
    return validate_params(params)


def reply(params: dict[str, Any], simulator: Simulator | None = None) -> dict[str, Any]:
    message = asyncio.run((simulator or Simulator()).create_message(params))
    Message.model_validate(message)
    return message


def text_of(message: dict[str, Any]) -> str:
    return "".join(block["text"] for block in message["content"] if block["type"] == "text")


def tool_uses(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [block for block in message["content"] if block["type"] == "tool_use"]


def weather_tool(**schema_changes: Any) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "City name"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["location"],
    }
    schema.update(schema_changes)
    return {"name": "get_weather", "description": "Current weather", "input_schema": schema}


CLOCK_TOOL = {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}


def schema_violations(value: Any, schema: Any, root: dict[str, Any], path: str = "$") -> list[str]:
    """The JSON-schema keywords the simulator's tool schemas use, checked independently."""
    if not isinstance(schema, dict):
        return []
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return schema_violations(value, target, root, path)
    problems: list[str] = []
    for part in schema.get("allOf", []):
        problems += schema_violations(value, part, root, path)
    options = schema.get("anyOf") or schema.get("oneOf")
    if options and all(schema_violations(value, option, root, path) for option in options):
        problems.append(f"{path}: matches no option")
    if "const" in schema and value != schema["const"]:
        problems.append(f"{path}: not the const")
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path}: not in enum")
    expected = schema.get("type")
    types = expected if isinstance(expected, list) else [expected] if expected else []
    python_types = {
        "object": dict,
        "array": list,
        "string": str,
        "integer": int,
        "number": (int, float),
        "boolean": bool,
        "null": type(None),
    }
    if types and not any(
        isinstance(value, python_types[name])
        and not (isinstance(value, bool) and name in ("integer", "number"))
        for name in types
    ):
        return [*problems, f"{path}: {value!r} is not {types}"]
    if isinstance(value, dict):
        missing = [name for name in schema.get("required", []) if name not in value]
        problems += [f"{path}.{name}: required" for name in missing]
        for name, item in value.items():
            if name in schema.get("properties", {}):
                problems += schema_violations(
                    item, schema["properties"][name], root, f"{path}.{name}"
                )
            elif schema.get("additionalProperties") is False:
                problems.append(f"{path}.{name}: not allowed")
    if isinstance(value, list):
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value)):
            problems.append(f"{path}: {len(value)} items")
        for index, item in enumerate(value):
            problems += schema_violations(item, schema.get("items"), root, f"{path}[{index}]")
    if isinstance(value, str):
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
            problems.append(f"{path}: length {len(value)}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            problems.append(f"{path}: does not match the pattern")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"{path}: below minimum")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"{path}: above maximum")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            problems.append(f"{path}: not above exclusiveMinimum")
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            problems.append(f"{path}: not below exclusiveMaximum")
        if "multipleOf" in schema and (value / schema["multipleOf"]) % 1:
            problems.append(f"{path}: not a multiple")
    return problems


MESSAGE_SHAPES = [
    pytest.param(request(), id="simple"),
    pytest.param(request("x " * 5000, max_tokens=10), id="long prompt"),
    pytest.param(request(max_tokens=1), id="one token"),
    pytest.param(request("Say STOP", stop_sequences=["STOP"]), id="stop sequence"),
    pytest.param(request("STOP", stop_sequences=["You"]), id="stop at first character"),
    pytest.param(request("Weather in Oslo?", tools=[weather_tool()]), id="tool use"),
    pytest.param(
        request(
            [
                {"type": "text", "text": "Summarise"},
                {"type": "document", "source": {"type": "text", "data": "abc"}},
            ]
        ),
        id="document",
    ),
    pytest.param(
        request(
            [
                {"type": "tool_result", "tool_use_id": "toolu_1"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": []},
            ]
        ),
        id="tool results without content",
    ),
    pytest.param(
        validate_params(
            {
                "model": "claude-haiku-4-5",
                "max_tokens": 50,
                "system": [{"type": "text", "text": "Be terse."}],
                "messages": [
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "The answer is ("},
                ],
            }
        ),
        id="prefill",
    ),
]


@pytest.mark.parametrize("params", MESSAGE_SHAPES)
def test_every_reply_is_a_valid_batch_message(params: dict[str, Any]) -> None:
    message = reply(params)

    assert message["id"].startswith("msg_")
    assert message["type"] == "message"
    assert message["role"] == "assistant"
    assert message["model"] == params["model"]
    usage = message["usage"]
    assert usage["input_tokens"] >= 1
    assert 1 <= usage["output_tokens"] <= params["max_tokens"]
    assert usage["cache_creation_input_tokens"] == 0
    assert usage["cache_read_input_tokens"] == 0
    assert usage["service_tier"] == "batch"


def test_reply_echoes_the_last_user_turn_one_token_per_word() -> None:
    message = reply(request("What is the capital of France?"))

    assert text_of(message) == "You said: What is the capital of France?"
    assert message["stop_reason"] == "end_turn"
    assert message["stop_sequence"] is None
    assert message["usage"]["output_tokens"] == 8


@pytest.mark.parametrize(
    "prompt",
    [
        "plain words, single spaces",
        "  leading and trailing spaces  ",
        "double  spaces inside",
        "tab\tand\nnewline\r\nand\x0bvertical\x0cfeed",
        "separators\x1c\x1d\x1e\x1fbetween",
        "non-breaking\xa0space and ideographic\u3000space",
        "accents: café, naïve",
        "word " * 60,  # past the echo's reach, cut just after a space
        "word" + " thirty-one-characters-each-xx" * 10,  # cut inside a word
        "x" * 300,  # a single word past the echo's reach
    ],
)
def test_the_echo_is_the_prompts_whole_words_single_spaced(prompt: str) -> None:
    # The words within the echo's reach; past it, the last one may be cut, so it is dropped.
    words = prompt[: simulator.ECHO_CHARACTERS].split()
    if len(prompt) > simulator.ECHO_CHARACTERS:
        words = words[:-1]
    expected = ["You", "said:", *words] if words else ["Hello!"]

    message = reply(request(prompt))

    assert text_of(message) == " ".join(expected)
    assert message["usage"]["output_tokens"] == len(expected)
    assert message["stop_reason"] == "end_turn"


def test_input_tokens_grow_with_the_prompt() -> None:
    short = reply(request("word " * 10))["usage"]["input_tokens"]
    long = reply(request("word " * 1000))["usage"]["input_tokens"]

    assert long > short + 1000


def test_same_params_give_the_same_message() -> None:
    params = request("Repeat after me", temperature=0.5, metadata={"user_id": "u"})
    reordered = dict(reversed(list(params.items())))

    assert reply(params) == reply(
        request("Repeat after me", temperature=0.5, metadata={"user_id": "u"})
    )
    assert reply(reordered) == reply(params)


def test_different_params_give_different_ids() -> None:
    ids = {reply(request(f"question {number}"))["id"] for number in range(200)}

    assert len(ids) == 200


def test_max_tokens_truncates_the_reply() -> None:
    message = reply(request("one two three four five six seven eight", max_tokens=4))

    assert text_of(message) == "You said: one two"
    assert message["stop_reason"] == "max_tokens"
    assert message["stop_sequence"] is None
    assert message["usage"]["output_tokens"] == 4


def test_a_reply_of_exactly_max_tokens_ends_its_turn() -> None:
    message = reply(request("one two", max_tokens=4))

    assert message["stop_reason"] == "end_turn"
    assert message["usage"]["output_tokens"] == 4


def test_stop_sequence_cuts_before_its_earliest_occurrence() -> None:
    message = reply(request("alpha beta END gamma HALT", stop_sequences=["HALT", "END"]))

    assert text_of(message) == "You said: alpha beta "
    assert message["stop_reason"] == "stop_sequence"
    assert message["stop_sequence"] == "END"
    assert message["usage"]["output_tokens"] == 5


def test_stop_sequence_beyond_max_tokens_is_never_generated() -> None:
    message = reply(request("one two three END", max_tokens=4, stop_sequences=["END"]))

    assert message["stop_reason"] == "max_tokens"
    assert message["stop_sequence"] is None


def test_stop_sequence_at_the_start_leaves_no_text() -> None:
    message = reply(request("hi", stop_sequences=["You"]))

    assert message["content"] == []
    assert message["stop_reason"] == "stop_sequence"


def test_prompt_that_mentions_a_tool_calls_it_with_valid_input() -> None:
    tools = [CLOCK_TOOL, weather_tool()]
    message = reply(request("What's the weather in SF?", tools=tools))

    assert message["stop_reason"] == "tool_use"
    assert message["content"][0]["type"] == "text"
    [call] = tool_uses(message)
    assert call["id"].startswith("toolu_")
    assert call["name"] == "get_weather"
    assert call["input"] == {"location": "SF"}


def test_tool_mention_needs_a_name_word_of_four_letters() -> None:
    message = reply(request("get me a coffee", tools=[weather_tool(), CLOCK_TOOL]))

    assert tool_uses(message) == []
    assert message["stop_reason"] == "end_turn"


@pytest.mark.parametrize(
    ("tool_choice", "expected_tool"),
    [
        pytest.param({"type": "any"}, "get_time", id="any picks the first"),
        pytest.param({"type": "tool", "name": "get_weather"}, "get_weather", id="named"),
        pytest.param({"type": "auto"}, None, id="auto without mention"),
    ],
)
def test_tool_choice_forces_a_call(tool_choice: dict[str, Any], expected_tool: str | None) -> None:
    params = request("Hello", tools=[CLOCK_TOOL, weather_tool()], tool_choice=tool_choice)

    names = [call["name"] for call in tool_uses(reply(params))]

    assert names == ([expected_tool] if expected_tool else [])


def test_tool_choice_none_never_calls_a_tool() -> None:
    params = request("weather?", tools=[weather_tool()], tool_choice={"type": "none"})

    message = reply(params)

    assert tool_uses(message) == []
    assert message["stop_reason"] == "end_turn"


def test_server_tools_are_never_called() -> None:
    params = request(
        "search the web for weather",
        tools=[{"type": "web_search_20250305", "name": "web_search"}],
        tool_choice={"type": "any"},
    )

    assert tool_uses(reply(params)) == []


def test_tool_call_that_does_not_fit_max_tokens_stops_at_max_tokens() -> None:
    message = reply(request("weather in Rome", tools=[weather_tool()], max_tokens=6))

    assert tool_uses(message) == []
    assert message["stop_reason"] == "max_tokens"
    assert message["usage"]["output_tokens"] == 6


NESTED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "$defs": {
        "Address": {
            "type": "object",
            "properties": {
                "street": {"type": "string", "minLength": 12},
                "zip": {"type": "string", "maxLength": 2},
                "kind": {"const": "home"},
            },
            "required": ["street", "zip", "kind"],
            "additionalProperties": False,
        }
    },
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 18, "maximum": 130},
        "score": {"type": "number", "exclusiveMinimum": 0.2, "exclusiveMaximum": 0.4},
        "ratio": {"type": "number", "minimum": 0, "maximum": 1},
        "step": {"type": "integer", "minimum": 7, "multipleOf": 5},
        "below": {"type": "integer", "maximum": -3},
        "active": {"type": "boolean"},
        "nothing": {"type": "null"},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
        "empty": {"type": "array", "maxItems": 0},
        "color": {"enum": ["red", "green"]},
        "size": {"type": "string", "default": "M"},
        "home": {"$ref": "#/$defs/Address"},
        "work": {"allOf": [{"$ref": "#/$defs/Address"}], "description": "Office"},
        "nickname": {"anyOf": [{"type": "null"}, {"type": "string"}]},
        "maybe_count": {"type": ["null", "integer"]},
        "when": {"type": "string", "format": "date-time"},
        "email": {"type": "string", "format": "email"},
        "matrix": {
            "type": "array",
            "items": {"type": "array", "items": {"type": "number"}, "minItems": 3},
        },
        "settings": {
            "type": "object",
            "properties": {"depth": {"type": "integer"}, "unused": {"type": "string"}},
            "required": ["depth"],
        },
        "optional": {"type": "string"},
    },
    "required": [
        "name",
        "age",
        "score",
        "ratio",
        "step",
        "below",
        "active",
        "nothing",
        "tags",
        "empty",
        "color",
        "size",
        "home",
        "work",
        "nickname",
        "maybe_count",
        "when",
        "email",
        "matrix",
        "settings",
    ],
}


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param(weather_tool()["input_schema"], id="weather"),
        pytest.param(NESTED_SCHEMA, id="nested"),
        pytest.param({"type": "object"}, id="no properties"),
        pytest.param({"type": "object", "required": ["anything"]}, id="required without schema"),
        pytest.param(
            {"type": "object", "properties": {"n": {"type": "number", "exclusiveMinimum": 5}}},
            id="optional only",
        ),
    ],
)
def test_tool_input_is_valid_against_the_input_schema(schema: dict[str, Any]) -> None:
    tool = {"name": "record_person", "input_schema": schema}
    params = request("Please record Ada Lovelace", tools=[tool], tool_choice={"type": "any"})

    [call] = tool_uses(reply(params))

    assert schema_violations(call["input"], schema, schema) == []
    assert set(call["input"]) == set(schema.get("required", []))


def test_tool_input_strings_reuse_the_prompt() -> None:
    params = request("Record the city Lisbon.", tools=[weather_tool()], tool_choice={"type": "any"})

    [call] = tool_uses(reply(params))

    assert call["input"]["location"] == "Lisbon"


def test_self_referencing_schema_still_yields_an_object() -> None:
    schema = {
        "type": "object",
        "$defs": {"Node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}}}},
        "properties": {"root": {"$ref": "#/$defs/Node"}},
        "required": ["root"],
    }
    params = request(
        "tree", tools=[{"name": "t", "input_schema": schema}], tool_choice={"type": "any"}
    )

    [call] = tool_uses(reply(params))

    assert call["input"] == {"root": {}}


def test_malformed_input_schema_is_an_invalid_request() -> None:
    tool = {
        "name": "broken",
        "input_schema": {"type": "object", "required": 5},
    }
    params = request("go", tools=[tool], tool_choice={"type": "any"})

    with pytest.raises(RequestError) as raised:
        asyncio.run(Simulator().create_message(params))

    assert raised.value.error_type == "invalid_request_error"
    assert "broken" in raised.value.message


@pytest.mark.parametrize(
    ("blocks", "acknowledgement"),
    [
        pytest.param(
            [{"type": "document", "source": {"type": "base64", "data": "JVBERi0="}}],
            "I received 1 document.",
            id="one document",
        ),
        pytest.param(
            [
                {"type": "image", "source": {"type": "url", "url": "https://x/a.png"}},
                {"type": "document", "source": {"type": "file", "file_id": "file_1"}},
                {"type": "image", "source": {"type": "base64", "data": "iVBORw=="}},
            ],
            "I received 1 document and 2 images.",
            id="document and images",
        ),
        pytest.param(
            [{"type": "image", "source": {"type": "url", "url": "https://x/a.png"}}] * 3,
            "I received 3 images.",
            id="images",
        ),
    ],
)
def test_attachments_are_acknowledged(blocks: list[dict[str, Any]], acknowledgement: str) -> None:
    message = reply(request([*blocks, {"type": "text", "text": "What are these?"}]))

    assert text_of(message) == f"{acknowledgement} You said: What are these?"
    assert message["stop_reason"] == "end_turn"


def test_tool_results_are_echoed() -> None:
    params = request(
        [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "15 degrees"},
            {
                "type": "tool_result",
                "tool_use_id": "toolu_2",
                "content": [{"type": "text", "text": "and sunny"}],
            },
        ]
    )

    assert text_of(reply(params)) == "You said: 15 degrees and sunny"


def test_fault_rate_fails_that_share_of_requests_with_the_given_types() -> None:
    simulator = Simulator(fault_rate=0.3, fault_types=("api_error", "overloaded_error"))
    outcomes: Counter[str] = Counter()
    for number in range(2000):
        try:
            reply(request(f"request {number}"), simulator)
            outcomes["succeeded"] += 1
        except RequestError as error:
            assert error.message.startswith(f"Simulated {error.error_type}")
            outcomes[error.error_type] += 1

    assert set(outcomes) == {"succeeded", "api_error", "overloaded_error"}
    assert 500 <= outcomes["api_error"] + outcomes["overloaded_error"] <= 700


def test_faults_are_deterministic() -> None:
    simulator = Simulator(fault_rate=0.5, fault_types=("rate_limit_error",))

    def outcome(number: int) -> str:
        try:
            return reply(request(f"request {number}"), simulator)["id"]
        except RequestError as error:
            return error.error_type

    first = [outcome(number) for number in range(100)]

    assert [outcome(number) for number in range(100)] == first
    assert set(first) & {"rate_limit_error"}


def test_fault_rate_extremes() -> None:
    with pytest.raises(RequestError) as raised:
        reply(request(), Simulator(fault_rate=1.0, fault_types=["overloaded_error"]))
    assert raised.value.error_type == "overloaded_error"

    assert reply(request(), Simulator(fault_rate=0.0))["type"] == "message"


def test_zero_latency_completes_without_yielding_to_the_event_loop() -> None:
    call = Simulator().create_message(request())

    with pytest.raises(StopIteration) as finished:
        call.send(None)

    assert finished.value.value["type"] == "message"


def test_latency_suspends_the_call() -> None:
    async def overlapped() -> float:
        simulator = Simulator(latency_ms=50)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.gather(*(simulator.create_message(request(str(n))) for n in range(20)))
        return loop.time() - started

    elapsed = asyncio.run(overlapped())

    assert elapsed >= 0.045


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({"latency_ms": -1}, id="negative latency"),
        pytest.param({"fault_rate": 1.5}, id="fault rate above 1"),
        pytest.param({"fault_rate": -0.1}, id="negative fault rate"),
        pytest.param({"fault_rate": 0.1, "fault_types": ()}, id="no fault types"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Simulator(**settings)
