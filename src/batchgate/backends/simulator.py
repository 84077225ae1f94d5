"""A deterministic stand-in for the Messages API, for tests, demos and load runs.

Every reply is a pure function of the params: the same request always gets the same Message
(id included) or the same simulated fault. Replies echo the start of the last user turn, one token
per word, so a caller can steer stop sequences, `max_tokens` and tool calls from the prompt alone.
"""

import asyncio
import math
from collections.abc import Sequence
from typing import Any

import msgspec
import orjson
import xxhash

from batchgate.backends.translate_openai import (
    chat_completion_from_message,
    text_chat_completion_json,
)
from batchgate.errors import RequestError
from batchgate.lifecycle.simple_params import SimpleParams

# msgspec rather than orjson: it also encodes integers beyond 64 bits, which a decoded request
# may hold, and structs; sorted keys (and struct fields) make the bytes, and so the hash,
# independent of key order.
_canonical_json = msgspec.json.Encoder(order="sorted").encode

_HASH_SPACE = 2**64
_MAX_SCHEMA_DEPTH = 16
_STRING_FORMAT_EXAMPLES = {
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "time": "00:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
}
# Replies echo at most this much of the prompt, as real replies are mostly short.
ECHO_CHARACTERS = 240
# What str.split() splits on in ASCII text, besides the space.
_OTHER_WHITESPACE = b"\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"
_WORD_PUNCTUATION = "\"'`.,;:!?()[]{}<>"


class Simulator:
    """Answers every request locally, after `latency_ms`, failing a `fault_rate` share of them.

    The failing share is chosen by params hash, so a given request always fails, or never does.
    """

    def __init__(
        self,
        latency_ms: float = 0.0,
        fault_rate: float = 0.0,
        fault_types: Sequence[str] = ("api_error", "overloaded_error"),
    ) -> None:
        if latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, not {latency_ms}")
        if not 0.0 <= fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be within 0..1, not {fault_rate}")
        if fault_rate > 0 and not fault_types:
            raise ValueError("fault_types must name at least one error type when fault_rate > 0")
        self._latency_s = latency_ms / 1000
        self._fault_threshold = int(fault_rate * _HASH_SPACE)
        self._fault_types = tuple(fault_types)

    @property
    def answers_at_once(self) -> bool:
        """With no latency the engine calls `reply` directly: no task, no slot, no await."""
        return self._latency_s == 0

    async def aclose(self) -> None:
        """It holds no connections."""

    async def create_message(self, params: dict[str, Any]) -> dict[str, Any]:
        if self._latency_s > 0:
            await asyncio.sleep(self._latency_s)
        return self.reply(params)

    def reply(self, params: dict[str, Any]) -> dict[str, Any]:
        """The reply to `params`, or its simulated fault (a RequestError), without waiting."""
        encoded = _canonical_json(params)
        return _compose_message(params, self._digest(encoded), _input_tokens(encoded))

    def reply_simple(self, params: SimpleParams) -> dict[str, Any]:
        """`reply` to params of the common shape, read from their struct rather than a dict.

        The struct encodes to the bytes of its dict, so the reply is the same, id included.
        """
        hex_digest, input_tokens, plain = self._plain_reply(params)
        if plain is None:
            return _compose_message(msgspec.to_builtins(params), hex_digest, input_tokens)
        text, output_tokens = plain
        content = [{"type": "text", "text": text}]
        return _message(
            params.model, hex_digest, content, "end_turn", None, input_tokens, output_tokens
        )

    def reply_chat_simple(self, params: SimpleParams) -> tuple[bytes, int, int]:
        """`reply_simple` as the JSON of the `chat.completion` it translates to
        (backends/translate_openai.py), built without the Message in between, and its prompt and
        completion tokens: an OpenAI batch's chat answered in line."""
        hex_digest, input_tokens, plain = self._plain_reply(params)
        if plain is None:
            message = _compose_message(msgspec.to_builtins(params), hex_digest, input_tokens)
            completion = chat_completion_from_message(message)
            usage = completion["usage"]
            return orjson.dumps(completion), usage["prompt_tokens"], usage["completion_tokens"]
        text, output_tokens = plain
        completion_json = text_chat_completion_json(
            _message_id(hex_digest), params.model, text, input_tokens, output_tokens
        )
        return completion_json, input_tokens, output_tokens

    def _plain_reply(self, params: SimpleParams) -> tuple[str, int, tuple[str, int] | None]:
        """The params' digest, input tokens, and the reply's text and output tokens when it is
        a plain echo (None otherwise)."""
        encoded = _canonical_json(params)
        hex_digest = self._digest(encoded)
        input_tokens = _input_tokens(encoded)
        user_text = ""
        for message in reversed(params.messages):
            if message.role == "user":
                user_text = message.content
                break
        # JSON escapes every control character, the whitespace among them (tabs, newlines):
        # params whose JSON holds no backslash hold none.
        plain = _plain_echo(user_text, params.max_tokens, control_free=b"\\" not in encoded)
        return hex_digest, input_tokens, plain

    def _digest(self, encoded: bytes) -> str:
        """The params' digest in hex, or their simulated fault (a RequestError)."""
        # Ids need only differ between requests, not resist attack: XXH3 hashes a request's
        # params in a twentieth of the time BLAKE2b took, ~1 µs less per request.
        digest = xxhash.xxh3_128_digest(encoded)
        if self._fault_threshold and int.from_bytes(digest[8:16]) < self._fault_threshold:
            fault_type = self._fault_types[digest[7] % len(self._fault_types)]
            raise RequestError(fault_type, f"Simulated {fault_type} from the batchgate simulator.")
        return digest.hex()


def _input_tokens(encoded_params: bytes) -> int:
    return max(1, len(encoded_params) // 4)


def _compose_message(params: dict[str, Any], hex_digest: str, input_tokens: int) -> dict[str, Any]:
    max_tokens: int = params["max_tokens"]
    user_text, image_count, document_count = _read_last_user_turn(params["messages"])
    words = _acknowledge_attachments(image_count, document_count)
    tool = _tool_to_call(params, user_text)
    stop_sequences = params.get("stop_sequences") or ()
    if tool is None and not words and not stop_sequences:
        plain = _plain_echo(user_text, max_tokens)
        if plain is not None:
            text, output_tokens = plain
            return _message(
                params["model"],
                hex_digest,
                [{"type": "text", "text": text}],
                "end_turn",
                None,
                input_tokens,
                output_tokens,
            )
    if tool is None:
        # Splitting only as far as the echo reaches keeps long prompts cheap; a word cut at
        # that point is dropped.
        echoed = user_text[:ECHO_CHARACTERS].split()
        if len(user_text) > ECHO_CHARACTERS and echoed:
            echoed.pop()
        words += ["You", "said:", *echoed] if echoed else ["Hello!"]
    else:
        words += ["I'll", "use", "the", tool["name"], "tool."]

    text, stop_reason, stop_sequence, output_tokens = _generate(words, max_tokens, stop_sequences)
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    if tool is not None and stop_reason == "end_turn":
        tool_input = _tool_input(tool, _topic(user_text))
        tool_tokens = 1 + len(_canonical_json(tool_input)) // 4
        if output_tokens + tool_tokens <= max_tokens:
            content.append(
                {
                    "type": "tool_use",
                    "id": "toolu_01" + hex_digest[10:32],
                    "name": tool["name"],
                    "input": tool_input,
                }
            )
            stop_reason = "tool_use"
            output_tokens += tool_tokens
        else:
            stop_reason = "max_tokens"
            output_tokens = max_tokens

    return _message(
        params["model"],
        hex_digest,
        content,
        stop_reason,
        stop_sequence,
        input_tokens,
        output_tokens,
    )


def _plain_echo(
    user_text: str, max_tokens: int, control_free: bool = False
) -> tuple[str, int] | None:
    """The reply's text and tokens when it is only "You said: ..." of a prompt whose words are
    already single-spaced ASCII, as most are; None for every other case.

    It gives what the word-by-word path below gives, without splitting the prompt into words,
    which was a third of the simulator's cost per request. `control_free`: the caller knows that
    the prompt holds no control character, so no whitespace but the space to look for.
    """
    prefix = user_text[:ECHO_CHARACTERS]
    if not prefix.isascii() or "  " in prefix:
        return None
    if not control_free:
        ascii_prefix = prefix.encode()
        if len(ascii_prefix.translate(None, _OTHER_WHITESPACE)) != len(ascii_prefix):
            return None
    echoed = prefix.strip(" ")
    if len(user_text) > ECHO_CHARACTERS:
        echoed = echoed.rpartition(" ")[0]
    if not echoed:
        return None
    output_tokens = 2 + echoed.count(" ") + 1  # "You said:" and the echoed words
    if output_tokens > max_tokens:
        return None
    return "You said: " + echoed, output_tokens


def _message_id(hex_digest: str) -> str:
    return "msg_01" + hex_digest[:22]


def _message(
    model: str,
    hex_digest: str,
    content: list[dict[str, Any]],
    stop_reason: str,
    stop_sequence: str | None,
    input_tokens: int,
    output_tokens: int,
) -> dict[str, Any]:
    return {
        "id": _message_id(hex_digest),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
            "service_tier": "batch",
        },
    }


def _read_last_user_turn(messages: list[dict[str, Any]]) -> tuple[str, int, int]:
    """The last user turn's text (tool results included), image count and document count."""
    content: str | list[dict[str, Any]] = ""
    for message in reversed(messages):
        if message["role"] == "user":
            content = message["content"]
            break
    if isinstance(content, str):
        return content, 0, 0
    texts: list[str] = []
    image_count = document_count = 0
    for block in content:
        block_type = block["type"]
        if block_type == "text":
            texts.append(block["text"])
        elif block_type == "image":
            image_count += 1
        elif block_type == "document":
            document_count += 1
        elif block_type == "tool_result":
            texts.extend(_tool_result_texts(block.get("content")))
    return " ".join(texts), image_count, document_count


def _tool_result_texts(result: str | list[dict[str, Any]] | None) -> list[str]:
    if result is None:
        return []
    if isinstance(result, str):
        return [result]
    return [block["text"] for block in result if block["type"] == "text"]


def _acknowledge_attachments(image_count: int, document_count: int) -> list[str]:
    if not image_count and not document_count:
        return []
    received = [
        f"{count} {noun}{'' if count == 1 else 's'}"
        for count, noun in ((document_count, "document"), (image_count, "image"))
        if count
    ]
    return f"I received {' and '.join(received)}.".split()


def _tool_to_call(params: dict[str, Any], user_text: str) -> dict[str, Any] | None:
    """The custom tool the reply calls: forced by `tool_choice`, or one the prompt mentions."""
    tools: list[dict[str, Any]] | None = params.get("tools")
    if not tools:
        return None
    # Server tools run on Anthropic's side with their own result blocks; only custom ones apply.
    custom_tools = [tool for tool in tools if tool.get("type") in (None, "custom")]
    tool_choice = params.get("tool_choice") or {"type": "auto"}
    choice_type = tool_choice["type"]
    if choice_type == "none" or not custom_tools:
        return None
    if choice_type == "any":
        return custom_tools[0]
    if choice_type == "tool":
        return next((tool for tool in custom_tools if tool["name"] == tool_choice["name"]), None)
    prompt = user_text.lower()
    for tool in custom_tools:
        for name_word in tool["name"].lower().split("_"):
            if len(name_word) >= 4 and name_word in prompt:
                return tool
    return None


def _tool_input(tool: dict[str, Any], topic: str) -> dict[str, Any]:
    schema = tool["input_schema"]
    try:
        tool_input = _example_value(schema, schema, topic)
    except (TypeError, AttributeError, ValueError) as malformed:
        # Anthropic rejects such a schema outright; say so rather than crash the engine.
        raise RequestError(
            "invalid_request_error",
            f"tools: input_schema of tool '{tool['name']}' is not a valid JSON schema",
        ) from malformed
    return tool_input if isinstance(tool_input, dict) else {}


def _generate(
    words: list[str], max_tokens: int, stop_sequences: Sequence[str]
) -> tuple[str, str, str | None, int]:
    """Text, stop reason, stop sequence and output tokens for a reply of `words`."""
    truncated = len(words) > max_tokens
    if truncated:
        words = words[:max_tokens]
    text = " ".join(words)
    stop_at = len(text)
    stop_sequence = None
    for sequence in stop_sequences:
        found_at = text.find(sequence)
        if found_at != -1 and found_at < stop_at:
            stop_at, stop_sequence = found_at, sequence
    if stop_sequence is not None:
        generated_words = len(text[: stop_at + len(stop_sequence)].split())
        return text[:stop_at], "stop_sequence", stop_sequence, generated_words
    return text, "max_tokens" if truncated else "end_turn", None, len(words)


def _topic(user_text: str) -> str:
    """The last word of the prompt ("What's the weather in SF?" gives "SF"), for string values."""
    for word in reversed(user_text.split()):
        stripped = word.strip(_WORD_PUNCTUATION)
        if stripped:
            return stripped
    return "example"


def _example_value(schema: object, root: dict[str, Any], word: str, depth: int = 0) -> Any:
    """A value valid against the JSON schema `schema`, whose `$ref`s resolve within `root`."""
    if not isinstance(schema, dict) or depth > _MAX_SCHEMA_DEPTH:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return _example_value(_resolve_ref(ref, root), root, word, depth + 1)
    if "const" in schema:
        return schema["const"]
    if "default" in schema:
        return schema["default"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for combinator in ("anyOf", "oneOf"):
        options = schema.get(combinator)
        if isinstance(options, list) and options:
            return _example_value(_prefer_non_null(options), root, word, depth + 1)
    if isinstance(schema.get("allOf"), list):
        schema = _merge_all_of(schema, root)

    schema_type = schema.get("type")
    if isinstance(schema_type, list):
        schema_type = next((option for option in schema_type if option != "null"), "null")
    if schema_type is None:
        if "properties" in schema or "required" in schema:
            schema_type = "object"
        elif "items" in schema:
            schema_type = "array"
        else:
            schema_type = "string"

    if schema_type == "object":
        properties = schema.get("properties") or {}
        return {
            name: _example_value(properties.get(name, {}), root, word, depth + 1)
            for name in schema.get("required") or ()
        }
    if schema_type == "array":
        min_items = schema.get("minItems", 0)
        max_items = schema.get("maxItems", max(min_items, 1))
        item_schema = schema.get("items", {})
        return [
            _example_value(item_schema, root, word, depth + 1)
            for _ in range(min(max(min_items, 1), max_items))
        ]
    if schema_type == "string":
        text = _STRING_FORMAT_EXAMPLES.get(schema.get("format", ""), word)
        text = text.ljust(schema.get("minLength", 0), "x")
        max_length = schema.get("maxLength")
        return text if max_length is None else text[:max_length]
    if schema_type == "integer":
        return _example_number(schema)
    if schema_type == "number":
        return _example_number(schema, fractional_allowed=True)
    if schema_type == "boolean":
        return True
    return None


def _resolve_ref(ref: str, root: dict[str, Any]) -> object:
    """Follows a local reference such as `#/$defs/Address`; remote ones resolve to nothing."""
    if not ref.startswith("#"):
        return None
    target: object = root
    for part in ref[1:].split("/")[1:]:
        if not isinstance(target, dict):
            return None
        target = target.get(part.replace("~1", "/").replace("~0", "~"))
    return target


def _prefer_non_null(options: list[Any]) -> object:
    for option in options:
        if not (isinstance(option, dict) and option.get("type") == "null"):
            return option
    return options[0]


def _merge_all_of(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    merged = {key: value for key, value in schema.items() if key != "allOf"}
    for part in schema["allOf"]:
        if isinstance(part, dict) and isinstance(part.get("$ref"), str):
            part = _resolve_ref(part["$ref"], root)
        if not isinstance(part, dict):
            continue
        for key, value in part.items():
            if key == "properties":
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required":
                merged["required"] = [*merged.get("required", []), *value]
            else:
                merged.setdefault(key, value)
    return merged


def _example_number(schema: dict[str, Any], fractional_allowed: bool = False) -> int | float:
    """1 when allowed, else the integer nearest to 1 within bounds, else (numbers) the midpoint."""
    low, low_exclusive = _bound(schema, "minimum", "exclusiveMinimum")
    high, high_exclusive = _bound(schema, "maximum", "exclusiveMaximum")
    value: int | float = 1
    if low is not None:
        value = max(value, math.floor(low) + 1 if low_exclusive else math.ceil(low))
    if high is not None:
        value = min(value, math.ceil(high) - 1 if high_exclusive else math.floor(high))
    step = schema.get("multipleOf")
    if isinstance(step, int | float) and step > 0:
        value = math.ceil(value / step) * step
    if fractional_allowed and low is not None and high is not None:
        above_low = value > low if low_exclusive else value >= low
        below_high = value < high if high_exclusive else value <= high
        if not (above_low and below_high):
            return (low + high) / 2
    return value


def _bound(
    schema: dict[str, Any], inclusive_key: str, exclusive_key: str
) -> tuple[float | None, bool]:
    """A numeric bound and whether it is exclusive, reading draft-04 boolean exclusives too."""
    exclusive = schema.get(exclusive_key)
    if isinstance(exclusive, int | float) and not isinstance(exclusive, bool):
        return exclusive, True
    return schema.get(inclusive_key), exclusive is True
