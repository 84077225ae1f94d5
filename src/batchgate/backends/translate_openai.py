"""Translation between Anthropic Messages params and OpenAI chat completions, both ways.

`chat_request_from_params` turns validated Messages params into a `/v1/chat/completions` body;
`message_from_chat_completion` turns the completion back into an Anthropic Message. Whatever
has no faithful OpenAI form raises `RequestError(invalid_request_error)` naming the field,
rather than being dropped, so a request never silently means something else upstream.

The other way, for OpenAI batches run on Messages backends: `params_from_chat_request` turns a
chat completions body into Messages params, `chat_completion_from_message` the Message back
into a `chat.completion`. What has no Messages form (n > 1, logprobs, JSON mode) is refused the
same way, naming the field.
"""

import base64
import binascii
import io
import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any, NoReturn

import orjson
import pypdf

from batchgate.errors import RequestError

_BACKEND = "an OpenAI-compatible backend"
_UNSAFE_ID_CHARACTERS = re.compile(r"[^A-Za-z0-9_-]")
_TOOL_ERROR_MARKER = "Error: "

_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
_STOP_REASONS = {
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
# Keys translated below, plus two with nothing to translate: `stream`, which batch params only
# ever leave false, and `service_tier`, since every batch runs at batch tier already. Any other
# key is refused rather than dropped.
_TRANSLATED_PARAMS = frozenset(
    {
        "model",
        "max_tokens",
        "messages",
        "system",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "metadata",
        "tools",
        "tool_choice",
        "thinking",
        "stream",
        "service_tier",
    }
)


def chat_request_from_params(params: dict[str, Any], model: str) -> dict[str, Any]:
    """The chat completions body, for `model` upstream, that asks what `params` ask.

    `top_k` is not part of OpenAI's API but vLLM, llama.cpp and most local servers read it
    from the body, so it is included as is; an SDK caller sends it via `extra_body`.
    """
    for field in params:
        if field not in _TRANSLATED_PARAMS:
            _untranslatable(field, "this parameter", "batchgate has no OpenAI equivalent for it")
    _check_thinking(params.get("thinking"))
    request: dict[str, Any] = {
        "model": model,
        "messages": [*_system_messages(params.get("system")), *_chat_messages(params["messages"])],
        "max_tokens": params["max_tokens"],
    }
    for field in ("temperature", "top_p", "top_k"):
        if params.get(field) is not None:
            request[field] = params[field]
    if params.get("stop_sequences"):
        request["stop"] = list(params["stop_sequences"])
    user_id = (params.get("metadata") or {}).get("user_id")
    if user_id is not None:
        request["user"] = user_id
    if params.get("tools"):
        request.update(_tool_fields(params["tools"], params.get("tool_choice")))
    return request


def message_from_chat_completion(
    completion: dict[str, Any], params: dict[str, Any]
) -> dict[str, Any]:
    """The Anthropic Message for `completion`, the upstream's answer to `params`."""
    choices = completion.get("choices") or []
    if not choices:
        raise RequestError("api_error", "the upstream chat completion contains no choices")
    choice = choices[0]
    reply = choice.get("message") or {}
    text = reply.get("content") or ""
    tool_calls = reply.get("tool_calls") or []
    finish_reason = choice.get("finish_reason")

    stop_sequence = None
    if finish_reason == "stop":
        text, stop_sequence = _strip_matched_stop(choice, text, params.get("stop_sequences") or [])
    refusal = reply.get("refusal")
    if refusal and not text:
        text = refusal

    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content.extend(_tool_use_block(call) for call in tool_calls)

    if stop_sequence is not None:
        stop_reason = "stop_sequence"
    elif refusal:
        stop_reason = "refusal"
    elif tool_calls and finish_reason != "length":
        # Some servers (llama.cpp among them) finish a tool call with "stop"; Anthropic
        # clients look for tool_use to know that a tool result is awaited.
        stop_reason = "tool_use"
    else:
        stop_reason = _STOP_REASONS.get(finish_reason or "stop", "end_turn")

    usage = completion.get("usage") or {}
    return {
        "id": _message_id(completion.get("id")),
        "type": "message",
        "role": "assistant",
        "model": params["model"],
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": {
            "input_tokens": usage.get("prompt_tokens") or 0,
            "output_tokens": usage.get("completion_tokens") or 0,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "batch",
        },
    }


def _untranslatable(path: str, what: str, why: str) -> NoReturn:
    raise RequestError(
        "invalid_request_error", f"{path}: {what} cannot be sent to {_BACKEND} because {why}"
    )


def _check_thinking(thinking: dict[str, Any] | None) -> None:
    if thinking is not None and thinking.get("type") != "disabled":
        _untranslatable(
            "thinking",
            "extended thinking",
            "chat completions have no thinking budget nor signed thinking blocks",
        )


def _system_messages(system: str | list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    if not system:
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    for index, block in enumerate(system):
        _check_no_citations(block, f"system.{index}")
    return [{"role": "system", "content": "\n".join(block["text"] for block in system)}]


def _chat_messages(messages: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    if messages[-1]["role"] == "assistant":
        _untranslatable(
            f"messages.{len(messages) - 1}",
            "a final assistant turn (prefill)",
            "chat completions start a new assistant turn instead of continuing it",
        )
    for role, blocks in _merged_turns(messages):
        if role == "user":
            yield from _user_messages(blocks)
        else:
            yield _assistant_message(blocks)


def _merged_turns(
    messages: list[dict[str, Any]],
) -> list[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    """Messages as (role, [(path, block)]), consecutive same-role ones merged.

    Anthropic merges consecutive turns of one role; many chat templates instead reject them.
    """
    turns: list[tuple[str, list[tuple[str, dict[str, Any]]]]] = []
    for index, message in enumerate(messages):
        content = message["content"]
        if isinstance(content, str):
            blocks = [(f"messages.{index}.content", {"type": "text", "text": content})]
        else:
            blocks = [
                (f"messages.{index}.content.{block_index}", block)
                for block_index, block in enumerate(content)
            ]
        if turns and turns[-1][0] == message["role"]:
            turns[-1][1].extend(blocks)
        else:
            turns.append((message["role"], blocks))
    return turns


def _user_messages(blocks: list[tuple[str, dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    """One `tool` message per tool_result and one `user` message per run of other blocks."""
    parts: list[dict[str, Any]] = []
    for path, block in blocks:
        if block["type"] == "tool_result":
            if parts:
                yield _user_message(parts)
                parts = []
            yield _tool_message(block, path)
        else:
            parts.append(_user_part(block, path))
    if parts:
        yield _user_message(parts)


def _user_message(parts: list[dict[str, Any]]) -> dict[str, Any]:
    # Text-only content goes as one string: many chat templates cannot render a parts list.
    if all(part["type"] == "text" for part in parts):
        return {"role": "user", "content": "\n".join(part["text"] for part in parts)}
    return {"role": "user", "content": parts}


def _user_part(block: dict[str, Any], path: str) -> dict[str, Any]:
    block_type = block["type"]
    if block_type == "text":
        _check_no_citations(block, path)
        return {"type": "text", "text": block["text"]}
    if block_type == "image":
        return {"type": "image_url", "image_url": {"url": _image_url(block["source"], path)}}
    if block_type == "document":
        return {"type": "text", "text": _document_text(block, path)}
    _untranslatable(path, f"a {block_type} block", "chat completions have no such content")


def _image_url(source: dict[str, Any], path: str) -> str:
    source_path = f"{path}.source"
    if source["type"] == "base64":
        media_type = _source_field(source, "media_type", source_path)
        return f"data:{media_type};base64,{_source_field(source, 'data', source_path)}"
    if source["type"] == "url":
        return _source_field(source, "url", source_path)
    _untranslatable(
        source_path,
        f"an image with a {source['type']} source",
        "only base64 and url images have an OpenAI form",
    )


def _source_field(source: dict[str, Any], field: str, path: str) -> str:
    value = source.get(field)
    if not isinstance(value, str):
        raise RequestError("invalid_request_error", f"{path}.{field}: Field required")
    return value


def _document_text(block: dict[str, Any], path: str) -> str:
    """The document as the text a chat model reads: title, context, then its contents."""
    if (block.get("citations") or {}).get("enabled"):
        _untranslatable(
            f"{path}.citations", "citations", "chat completions cannot return citation blocks"
        )
    source = block["source"]
    source_path = f"{path}.source"
    source_type = source["type"]
    media_type = source.get("media_type")
    if source_type == "text":
        contents = _source_field(source, "data", source_path)
    elif source_type == "base64" and media_type == "application/pdf":
        contents = _pdf_text(_decoded_data(source, source_path), source_path)
    elif source_type == "base64" and media_type == "text/plain":
        contents = _utf8_text(_decoded_data(source, source_path), source_path)
    elif source_type == "content":
        contents = _content_source_text(source.get("content") or [], f"{source_path}.content")
    elif source_type == "base64":
        _untranslatable(
            f"{source_path}.media_type",
            f"a {media_type} document",
            "only PDF and plain-text documents can be turned into text",
        )
    else:
        _untranslatable(
            source_path,
            f"a document with a {source_type} source",
            "batchgate reads only documents sent inline",
        )
    return "\n\n".join(
        part for part in (block.get("title"), block.get("context"), contents) if part
    )


def _content_source_text(content: str | list[dict[str, Any]], path: str) -> str:
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for index, block in enumerate(content):
        if block["type"] != "text":
            _untranslatable(
                f"{path}.{index}",
                f"a {block['type']} block inside a document",
                "a document becomes text for an OpenAI-compatible model",
            )
        texts.append(block["text"])
    return "\n".join(texts)


def _decoded_data(source: dict[str, Any], path: str) -> bytes:
    try:
        return base64.b64decode(_source_field(source, "data", path), validate=True)
    except binascii.Error:
        raise RequestError("invalid_request_error", f"{path}.data: Invalid base64 data") from None


def _utf8_text(data: bytes, path: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError(
            "invalid_request_error", f"{path}.data: a text/plain document must be UTF-8"
        ) from None


def _pdf_text(pdf: bytes, path: str) -> str:
    try:
        reader = pypdf.PdfReader(io.BytesIO(pdf))
        text = "\n\n".join(page.extract_text() for page in reader.pages).strip()
    # pypdf raises assorted exception types on malformed input, not only PyPdfError.
    except Exception as unreadable:
        raise RequestError(
            "invalid_request_error", f"{path}.data: the PDF cannot be read: {unreadable}"
        ) from unreadable
    if not text:
        _untranslatable(
            f"{path}.data",
            "a PDF without a text layer",
            "its pages would have to be read as images, which the text extraction cannot do",
        )
    return text


def _tool_message(block: dict[str, Any], path: str) -> dict[str, Any]:
    text = _tool_result_text(block.get("content"), f"{path}.content")
    # OpenAI tool messages have no error flag: the marker keeps the failure visible to the model.
    if block.get("is_error"):
        text = _TOOL_ERROR_MARKER + text
    return {"role": "tool", "tool_call_id": block["tool_use_id"], "content": text}


def _tool_result_text(content: str | list[dict[str, Any]] | None, path: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    texts: list[str] = []
    for index, block in enumerate(content):
        block_path = f"{path}.{index}"
        if block["type"] == "text":
            _check_no_citations(block, block_path)
            texts.append(block["text"])
        elif block["type"] == "document":
            texts.append(_document_text(block, block_path))
        else:
            _untranslatable(
                block_path,
                f"a {block['type']} block inside a tool_result",
                "OpenAI tool messages carry text only",
            )
    return "\n".join(texts)


def _assistant_message(blocks: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for path, block in blocks:
        if block["type"] == "text":
            _check_no_citations(block, path)
            texts.append(block["text"])
        elif block["type"] == "tool_use":
            arguments = json.dumps(block["input"], ensure_ascii=False)
            tool_calls.append(
                {
                    "id": block["id"],
                    "type": "function",
                    "function": {"name": block["name"], "arguments": arguments},
                }
            )
        else:
            _untranslatable(
                path,
                f"a {block['type']} block in an assistant turn",
                "chat completions have no such content",
            )
    message: dict[str, Any] = {"role": "assistant", "content": "\n".join(texts) or None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def _check_no_citations(block: dict[str, Any], path: str) -> None:
    if block.get("citations"):
        _untranslatable(
            f"{path}.citations", "citations", "chat messages have no place for citation sources"
        )


def _tool_fields(tools: list[dict[str, Any]], tool_choice: dict[str, Any] | None) -> dict[str, Any]:
    functions = []
    for index, tool in enumerate(tools):
        if tool.get("type") not in (None, "custom"):
            _untranslatable(
                f"tools.{index}",
                f"the server tool {tool['type']}",
                "server tools run on Anthropic's own servers",
            )
        function: dict[str, Any] = {"name": tool["name"], "parameters": tool["input_schema"]}
        if tool.get("description"):
            function["description"] = tool["description"]
        if tool.get("strict") is not None:
            function["strict"] = tool["strict"]
        functions.append({"type": "function", "function": function})
    fields: dict[str, Any] = {"tools": functions}
    if tool_choice is None:
        return fields
    if tool_choice["type"] == "tool":
        fields["tool_choice"] = {"type": "function", "function": {"name": tool_choice["name"]}}
    else:
        fields["tool_choice"] = _TOOL_CHOICES[tool_choice["type"]]
    if tool_choice.get("disable_parallel_tool_use"):
        fields["parallel_tool_calls"] = False
    return fields


def _strip_matched_stop(
    choice: dict[str, Any], text: str, stop_sequences: list[str]
) -> tuple[str, str | None]:
    """The text without its stop sequence, and the sequence, when one ended the completion.

    OpenAI's "stop" covers both a natural end and a stop sequence, and servers strip the
    sequence without saying which one matched. Two hints remain: the extra some servers add
    to the choice (vLLM's `stop_reason`, SGLang's `matched_stop`: the matched string, or a
    token id when a stop token ended it), and a reply that still ends with a requested
    sequence (a server told to keep it), which can only mean generation halted there. With
    neither, the reply reads as end_turn: an end-of-turn token and a stripped stop sequence
    leave the same text behind.
    """
    for extra in ("stop_reason", "matched_stop"):
        matched = choice.get(extra)
        if isinstance(matched, str) and matched in stop_sequences:
            return text.removesuffix(matched), matched
    for sequence in stop_sequences:
        if text.endswith(sequence):
            return text.removesuffix(sequence), sequence
    return text, None


def _tool_use_block(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    arguments = function.get("arguments") or "{}"
    try:
        tool_input = json.loads(arguments)
    except json.JSONDecodeError:
        tool_input = None
    if not isinstance(tool_input, dict):
        raise RequestError(
            "api_error",
            f"the upstream model called {function.get('name')} with arguments that are not"
            f" a JSON object: {arguments!r}",
        )
    return {
        "type": "tool_use",
        "id": "toolu_" + _sanitized_id(call.get("id")),
        "name": function.get("name"),
        "input": tool_input,
    }


def _message_id(completion_id: object) -> str:
    return "msg_" + _sanitized_id(completion_id)


def _sanitized_id(upstream_id: object) -> str:
    """The upstream id in Anthropic's id alphabet, or a fresh one when it gave none."""
    if not isinstance(upstream_id, str) or not upstream_id:
        return uuid.uuid4().hex
    return _UNSAFE_ID_CHARACTERS.sub("_", upstream_id)


# --- chat completions → Messages (OpenAI batches on Messages backends) -----------------------

_CHAT_BACKEND = "this route's backend (it speaks Anthropic Messages)"
# Anthropic requires max_tokens; chat completions default to the model's limit.
DEFAULT_MAX_TOKENS = 4096
# Chat fields translated below, and those that change nothing for one batch request.
_CHAT_FIELDS = frozenset(
    {
        "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p",
        "stop", "tools", "tool_choice", "user", "n", "stream", "store", "metadata",
        "parallel_tool_calls", "service_tier", "top_k",
    }
)  # fmt: skip
_CHAT_TOOL_CHOICES: dict[str, dict[str, Any]] = {
    "auto": {"type": "auto"},
    "required": {"type": "any"},
    "none": {"type": "none"},
}
_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
}


def _unsupported(path: str, what: str, why: str) -> NoReturn:
    raise RequestError(
        "invalid_request_error", f"{path}: {what} cannot be sent to {_CHAT_BACKEND} because {why}"
    )


def _invalid(path: str, message: str) -> NoReturn:
    raise RequestError("invalid_request_error", f"{path}: {message}")


def params_from_chat_request(body: dict[str, Any]) -> dict[str, Any]:
    """The Messages params that ask what the chat completions `body` asks."""
    for field in body:
        if field not in _CHAT_FIELDS:
            _unsupported(field, "this parameter", "Messages have no equivalent for it")
    if body.get("n") not in (None, 1):
        _unsupported("n", "more than one choice", "a Message is a single answer")
    if body.get("stream"):
        _unsupported("stream", "streaming", "batch requests are answered whole")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        _invalid("model", "Field required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        _invalid("messages", "a non-empty list of messages is required")
    system, turns = _messages_from_chat(messages)
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS
    params: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": turns}
    if system:
        params["system"] = system
    for field in ("temperature", "top_p", "top_k"):
        if body.get(field) is not None:
            params[field] = body[field]
    stop = body.get("stop")
    if stop:
        params["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("user") is not None:
        params["metadata"] = {"user_id": body["user"]}
    if body.get("tools"):
        params["tools"] = [
            _tool_from_function(tool, index) for index, tool in enumerate(body["tools"])
        ]
    if body.get("tool_choice") is not None:
        params["tool_choice"] = _tool_choice(body["tool_choice"], body.get("parallel_tool_calls"))
    return params


def _messages_from_chat(messages: list[Any]) -> tuple[str, list[dict[str, Any]]]:
    """The system prompt (system and developer messages) and the turns, consecutive turns of
    one role merged as Anthropic requires."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        path = f"messages.{index}"
        if not isinstance(message, dict):
            _invalid(path, "Input should be an object")
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(_plain_text(message.get("content"), f"{path}.content"))
            continue
        if role == "user":
            blocks = _user_blocks(message.get("content"), f"{path}.content")
            role = "user"
        elif role == "assistant":
            blocks = _assistant_blocks(message, path)
        elif role == "tool":
            blocks = [
                {
                    "type": "tool_result",
                    "tool_use_id": _tool_use_id(
                        message.get("tool_call_id"), f"{path}.tool_call_id"
                    ),
                    "content": _plain_text(message.get("content"), f"{path}.content"),
                }
            ]
            role = "user"
        else:
            _invalid(f"{path}.role", f"unknown role {role!r}")
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if not turns:
        _invalid("messages", "at least one user message is required")
    for turn in turns:
        # A lone text block is the plain string it came from, as the common shape has it
        # (lifecycle/simple_params.py): both paths then ask the backend the same thing.
        if len(turn["content"]) == 1 and turn["content"][0]["type"] == "text":
            turn["content"] = turn["content"][0]["text"]
    return "\n".join(system), turns


def _plain_text(content: Any, path: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        texts = []
        for index, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text":
                _invalid(f"{path}.{index}", "only text parts are allowed here")
            texts.append(str(part.get("text", "")))
        return "\n".join(texts)
    _invalid(path, "Input should be a string or a list of parts")


def _user_blocks(content: Any, path: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        _invalid(path, "Input should be a string or a list of parts")
    blocks: list[dict[str, Any]] = []
    for index, part in enumerate(content):
        part_path = f"{path}.{index}"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            blocks.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind == "image_url":
            url = (part.get("image_url") or {}).get("url")
            if not isinstance(url, str):
                _invalid(f"{part_path}.image_url.url", "Field required")
            blocks.append({"type": "image", "source": _image_source(url)})
        else:
            _unsupported(part_path, f"a {kind} part", "Messages have no such content")
    return blocks


def _image_source(url: str) -> dict[str, Any]:
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header.removeprefix("data:").removesuffix(";base64")
        return {"type": "base64", "media_type": media_type, "data": data}
    return {"type": "url", "url": url}


def _assistant_blocks(message: dict[str, Any], path: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    text = _plain_text(message.get("content"), f"{path}.content")
    if text:
        blocks.append({"type": "text", "text": text})
    for index, call in enumerate(message.get("tool_calls") or []):
        call_path = f"{path}.tool_calls.{index}"
        function = call.get("function") or {}
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except json.JSONDecodeError:
            _invalid(f"{call_path}.function.arguments", "not valid JSON")
        blocks.append(
            {
                "type": "tool_use",
                "id": _tool_use_id(call.get("id"), f"{call_path}.id"),
                "name": function.get("name"),
                "input": arguments,
            }
        )
    return blocks


def _tool_use_id(call_id: Any, path: str) -> str:
    if not isinstance(call_id, str) or not call_id:
        _invalid(path, "Field required")
    return _UNSAFE_ID_CHARACTERS.sub("_", call_id)


def _tool_from_function(tool: Any, index: int) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) else None
    if tool.get("type") != "function" or not isinstance(function, dict):
        _unsupported(
            f"tools.{index}", "a tool that is not a function", "Messages tools are functions"
        )
    converted: dict[str, Any] = {
        "name": function.get("name"),
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        converted["description"] = function["description"]
    return converted


def _tool_choice(choice: Any, parallel: bool | None) -> dict[str, Any]:
    converted: dict[str, Any]
    if isinstance(choice, str) and choice in _CHAT_TOOL_CHOICES:
        converted = dict(_CHAT_TOOL_CHOICES[choice])
    elif isinstance(choice, dict) and choice.get("type") == "function":
        converted = {"type": "tool", "name": (choice.get("function") or {}).get("name")}
    else:
        _invalid("tool_choice", f"unknown tool choice {choice!r}")
    if parallel is False and converted["type"] != "none":
        converted["disable_parallel_tool_use"] = True
    return converted


def chat_completion_from_message(message: dict[str, Any]) -> dict[str, Any]:
    """The `chat.completion` that says what the Message says."""
    texts = [block["text"] for block in message["content"] if block["type"] == "text"]
    tool_calls = [
        {
            "id": block["id"],
            "type": "function",
            "function": {
                "name": block["name"],
                "arguments": json.dumps(block["input"], ensure_ascii=False),
            },
        }
        for block in message["content"]
        if block["type"] == "tool_use"
    ]
    reply: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        reply["tool_calls"] = tool_calls
    usage = message.get("usage") or {}
    cached_tokens = usage.get("cache_read_input_tokens") or 0
    return _chat_completion(
        message["id"],
        message["model"],
        reply,
        _FINISH_REASONS.get(message.get("stop_reason") or "", "stop"),
        (usage.get("input_tokens") or 0) + cached_tokens,
        cached_tokens,
        usage.get("output_tokens") or 0,
    )


# What `_chat_completion` gives for a text reply, as orjson encodes it, with its values to fill
# in: formatted around them, with no dicts built to be encoded, an OpenAI batch's chat answered in
# line by the simulator costs half as much.
_TEXT_CHAT_COMPLETION = (
    b'{"id":"chatcmpl-%b","object":"chat.completion","created":%d,"model":%b,"choices":[{'
    b'"index":0,"message":{"role":"assistant","content":%b,"refusal":null},"logprobs":null,'
    b'"finish_reason":"stop"}],"usage":{"prompt_tokens":%d,"completion_tokens":%d,'
    b'"total_tokens":%d,"prompt_tokens_details":{"cached_tokens":0}}}'
)


def text_chat_completion_json(
    message_id: str, model: str, text: str, input_tokens: int, output_tokens: int
) -> bytes:
    """The JSON of what `chat_completion_from_message` makes of a Message of one text block that
    ended its turn, with nothing read from a cache, from its parts (no Message built to be read
    back), byte for byte."""
    return _TEXT_CHAT_COMPLETION % (
        message_id.removeprefix("msg_").encode(),
        int(time.time()),
        orjson.dumps(model),
        orjson.dumps(text),
        input_tokens,
        output_tokens,
        input_tokens + output_tokens,
    )


def _chat_completion(
    message_id: str,
    model: str,
    reply: dict[str, Any],
    finish_reason: str,
    prompt_tokens: int,
    cached_tokens: int,
    completion_tokens: int,
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-" + message_id.removeprefix("msg_"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": reply, "logprobs": None, "finish_reason": finish_reason}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached_tokens},
        },
    }
