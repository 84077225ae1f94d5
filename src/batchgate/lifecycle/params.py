"""Validation of one batch request's `params`, as the Messages API does when it processes it.

Error messages follow the API's pydantic style, `<dotted.path>: <what is wrong>`, so a client
sees the same text it would get from Anthropic. Keys this module does not know pass through.
"""

from collections.abc import Callable
from typing import Any, NoReturn

from batchgate.errors import RequestError

_NOT_AN_OBJECT = "Input should be a valid dictionary"
_NOT_A_STRING = "Input should be a valid string"
_NOT_A_LIST = "Input should be a valid list"
_NOT_A_NUMBER = "Input should be a valid number"
_NOT_AN_INTEGER = "Input should be a valid integer"
_EMPTY_STRING = "String should have at least 1 character"
_EMPTY_LIST = "List should have at least 1 item after validation, not 0"
_MISSING = "Field required"

_REQUIRED_FIELDS = ("model", "max_tokens", "messages")
_ROLES = ("user", "assistant")
_TOOL_CHOICE_TYPES = ("auto", "any", "tool", "none")

_BLOCK_TYPES = frozenset(
    {
        "text",
        "image",
        "document",
        "search_result",
        "thinking",
        "redacted_thinking",
        "tool_use",
        "tool_result",
        "server_tool_use",
        "mcp_tool_use",
        "container_upload",
        "compaction",
    }
)
# New server tools keep arriving (`*_tool_result` blocks), so their results are accepted by shape.
_SERVER_TOOL_RESULT_SUFFIX = "_tool_result"

_REQUIRED_BLOCK_FIELDS: dict[str, tuple[tuple[str, type, str], ...]] = {
    "text": (("text", str, _NOT_A_STRING),),
    "image": (("source", dict, _NOT_AN_OBJECT),),
    "document": (("source", dict, _NOT_AN_OBJECT),),
    "tool_use": (
        ("id", str, _NOT_A_STRING),
        ("name", str, _NOT_A_STRING),
        ("input", dict, _NOT_AN_OBJECT),
    ),
    "tool_result": (("tool_use_id", str, _NOT_A_STRING),),
    "thinking": (("thinking", str, _NOT_A_STRING), ("signature", str, _NOT_A_STRING)),
    "redacted_thinking": (("data", str, _NOT_A_STRING),),
}


def validate_params(params: object) -> dict[str, Any]:
    """Returns `params` unchanged when valid, else raises `RequestError(invalid_request_error)`."""
    if not isinstance(params, dict):
        _fail("params", _NOT_AN_OBJECT)
    for field in _REQUIRED_FIELDS:
        if field not in params:
            _fail(field, _MISSING)
    for field, value in params.items():
        check = _FIELD_CHECKS.get(field)
        if check is not None:
            check(value)
    tool_choice = params.get("tool_choice")
    if tool_choice is not None:
        _check_tool_choice_names_a_tool(tool_choice, params.get("tools"))
    return params


def _fail(path: str, problem: str) -> NoReturn:
    raise RequestError("invalid_request_error", f"{path}: {problem}")


def _check_model(model: object) -> None:
    if not isinstance(model, str):
        _fail("model", _NOT_A_STRING)
    if not model:
        _fail("model", _EMPTY_STRING)


def _check_max_tokens(max_tokens: object) -> None:
    if type(max_tokens) is not int:
        _fail("max_tokens", _NOT_AN_INTEGER)
    if max_tokens < 1:
        _fail("max_tokens", "Input should be greater than or equal to 1")


def _check_stream(stream: object) -> None:
    if stream is True:
        _fail("stream", "batch requests cannot be streamed")
    if stream is not False and stream is not None:
        _fail("stream", "Input should be a valid boolean")


def _check_messages(messages: object) -> None:
    if not isinstance(messages, list):
        _fail("messages", _NOT_A_LIST)
    if not messages:
        _fail("messages", _EMPTY_LIST)
    for index, message in enumerate(messages):
        _check_message(message, index)


def _check_message(message: object, index: int) -> None:
    if not isinstance(message, dict):
        _fail(f"messages.{index}", _NOT_AN_OBJECT)
    role = message.get("role")
    if role is None:
        _fail(f"messages.{index}.role", _MISSING)
    if role not in _ROLES:
        _fail(f"messages.{index}.role", "Input should be 'user' or 'assistant'")
    if "content" not in message:
        _fail(f"messages.{index}.content", _MISSING)
    content = message["content"]
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        _fail(f"messages.{index}.content", "Input should be a valid string or list")
    if not content:
        _fail(f"messages.{index}.content", _EMPTY_LIST)
    for block_index, block in enumerate(content):
        _check_content_block(block, f"messages.{index}.content.{block_index}")


def _check_content_block(block: object, path: str) -> None:
    if not isinstance(block, dict):
        _fail(path, _NOT_AN_OBJECT)
    block_type = block.get("type")
    if block_type is None:
        _fail(f"{path}.type", _MISSING)
    if not isinstance(block_type, str):
        _fail(f"{path}.type", _NOT_A_STRING)
    if block_type not in _BLOCK_TYPES and not block_type.endswith(_SERVER_TOOL_RESULT_SUFFIX):
        _fail(
            f"{path}.type",
            f"Input tag '{block_type}' found using 'type' does not match any of the expected tags",
        )
    for field, expected_type, problem in _REQUIRED_BLOCK_FIELDS.get(block_type, ()):
        if field not in block:
            _fail(f"{path}.{field}", _MISSING)
        if not isinstance(block[field], expected_type):
            _fail(f"{path}.{field}", problem)
    if block_type == "image" or block_type == "document":
        source_type = block["source"].get("type")
        if source_type is None:
            _fail(f"{path}.source.type", _MISSING)
        if not isinstance(source_type, str):
            _fail(f"{path}.source.type", _NOT_A_STRING)
    elif block_type == "tool_result":
        _check_tool_result_content(block.get("content"), f"{path}.content")


def _check_tool_result_content(content: object, path: str) -> None:
    if content is None or isinstance(content, str):
        return
    if not isinstance(content, list):
        _fail(path, "Input should be a valid string or list")
    for index, block in enumerate(content):
        _check_content_block(block, f"{path}.{index}")


def _check_system(system: object) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        _fail("system", "Input should be a valid string or list")
    for index, block in enumerate(system):
        if not isinstance(block, dict):
            _fail(f"system.{index}", _NOT_AN_OBJECT)
        if block.get("type") != "text":
            _fail(f"system.{index}.type", "Input should be 'text'")
        if not isinstance(block.get("text"), str):
            _fail(f"system.{index}.text", _NOT_A_STRING)


def _check_stop_sequences(stop_sequences: object) -> None:
    if stop_sequences is None:
        return
    if not isinstance(stop_sequences, list):
        _fail("stop_sequences", _NOT_A_LIST)
    for index, sequence in enumerate(stop_sequences):
        if not isinstance(sequence, str):
            _fail(f"stop_sequences.{index}", _NOT_A_STRING)
        if not sequence.strip():
            _fail(f"stop_sequences.{index}", "String should contain non-whitespace characters")


def _check_unit_interval(field: str) -> Callable[[object], None]:
    def check(value: object) -> None:
        if value is None:
            return
        if type(value) is not float and type(value) is not int:
            _fail(field, _NOT_A_NUMBER)
        if value < 0:
            _fail(field, "Input should be greater than or equal to 0")
        if not value <= 1:  # written this way round so that NaN fails too
            _fail(field, "Input should be less than or equal to 1")

    return check


def _check_top_k(top_k: object) -> None:
    if top_k is None:
        return
    if type(top_k) is not int:
        _fail("top_k", _NOT_AN_INTEGER)
    if top_k < 0:
        _fail("top_k", "Input should be greater than or equal to 0")


def _check_metadata(metadata: object) -> None:
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        _fail("metadata", _NOT_AN_OBJECT)
    user_id = metadata.get("user_id")
    if user_id is not None and not isinstance(user_id, str):
        _fail("metadata.user_id", _NOT_A_STRING)


def _check_tools(tools: object) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        _fail("tools", _NOT_A_LIST)
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            _fail(f"tools.{index}", _NOT_AN_OBJECT)
        name = tool.get("name")
        if name is None:
            _fail(f"tools.{index}.name", _MISSING)
        if not isinstance(name, str):
            _fail(f"tools.{index}.name", _NOT_A_STRING)
        if not name:
            _fail(f"tools.{index}.name", _EMPTY_STRING)
        tool_type = tool.get("type")
        if tool_type is not None and not isinstance(tool_type, str):
            _fail(f"tools.{index}.type", _NOT_A_STRING)
        # Any other `type` names a server tool (web_search_20250305, bash_20250124, ...),
        # which Anthropic defines itself and so needs no schema.
        if tool_type is None or tool_type == "custom":
            if "input_schema" not in tool:
                _fail(f"tools.{index}.input_schema", _MISSING)
            if not isinstance(tool["input_schema"], dict):
                _fail(f"tools.{index}.input_schema", _NOT_AN_OBJECT)


def _check_tool_choice(tool_choice: object) -> None:
    if tool_choice is None:
        return
    if not isinstance(tool_choice, dict):
        _fail("tool_choice", _NOT_AN_OBJECT)
    choice_type = tool_choice.get("type")
    if choice_type is None:
        _fail("tool_choice.type", _MISSING)
    if choice_type not in _TOOL_CHOICE_TYPES:
        _fail("tool_choice.type", "Input should be 'auto', 'any', 'tool' or 'none'")
    if choice_type == "tool":
        name = tool_choice.get("name")
        if name is None:
            _fail("tool_choice.name", _MISSING)
        if not isinstance(name, str):
            _fail("tool_choice.name", _NOT_A_STRING)
        if not name:
            _fail("tool_choice.name", _EMPTY_STRING)


def _check_tool_choice_names_a_tool(tool_choice: dict[str, Any], tools: list[Any] | None) -> None:
    choice_type = tool_choice["type"]
    if choice_type != "any" and choice_type != "tool":
        return
    if not tools:
        _fail("tool_choice", "tool_choice may only be specified while providing tools")
    if choice_type == "tool" and all(tool["name"] != tool_choice["name"] for tool in tools):
        _fail("tool_choice.name", f"Tool '{tool_choice['name']}' not found in tools")


def _check_thinking(thinking: object) -> None:
    if thinking is not None and not isinstance(thinking, dict):
        _fail("thinking", _NOT_AN_OBJECT)


_FIELD_CHECKS: dict[str, Callable[[object], None]] = {
    "model": _check_model,
    "max_tokens": _check_max_tokens,
    "messages": _check_messages,
    "stream": _check_stream,
    "system": _check_system,
    "stop_sequences": _check_stop_sequences,
    "temperature": _check_unit_interval("temperature"),
    "top_p": _check_unit_interval("top_p"),
    "top_k": _check_top_k,
    "metadata": _check_metadata,
    "tools": _check_tools,
    "tool_choice": _check_tool_choice,
    "thinking": _check_thinking,
}
