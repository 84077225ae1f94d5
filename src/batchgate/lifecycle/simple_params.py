"""The common shape of a request's params, decoded and checked in one pass.

Most batch requests are a plain text conversation: `model`, `max_tokens`, `messages` whose
contents are strings, perhaps a `system` string and sampling knobs. msgspec decodes and checks
exactly that shape in C, in a third of the time that decoding into dicts and checking them in
Python takes (lifecycle/params.py). Params of any other shape, valid or not, are not
SimpleParams: they take that general path, which also words the errors. So every SimpleParams
is one that `validate_params` accepts, with the same values (tests/unit/test_simple_params.py).

An OpenAI batch's chat request of the same plain shape (system, developer, user and assistant
messages of strings, alternating after the system ones) decodes to SimpleParams as well, equal
to what its translation (backends/translate_openai.py) would give.
"""

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

# `int | float`, as in JSON: 1 stays 1 rather than becoming 1.0, so that the params encode
# (and the simulator hashes them) exactly as their dict does.
UnitInterval = Annotated[int, Meta(ge=0, le=1)] | Annotated[float, Meta(ge=0, le=1)]


# gc=False: decoded from JSON, they can hold no reference cycle, so the garbage collector need
# not track the objects each request makes.
class SimpleMessage(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    role: Literal["user", "assistant"]
    content: str


class SimpleParams(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    model: Annotated[str, Meta(min_length=1)]
    max_tokens: Annotated[int, Meta(ge=1)]
    messages: Annotated[list[SimpleMessage], Meta(min_length=1)]
    # UNSET when absent, so that they stay absent when encoded, as in the dict.
    system: str | UnsetType | None = UNSET
    temperature: UnitInterval | UnsetType | None = UNSET
    top_p: UnitInterval | UnsetType | None = UNSET
    top_k: Annotated[int, Meta(ge=0)] | UnsetType | None = UNSET


_decode = msgspec.json.Decoder(SimpleParams).decode


def decode_simple_params(raw_params: bytes | memoryview | msgspec.Raw) -> SimpleParams | None:
    """The params as SimpleParams when they have that shape and are valid; None otherwise."""
    try:
        return _decode(raw_params)
    except msgspec.DecodeError:
        return None


class SimpleChatMessage(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    role: Literal["system", "developer", "user", "assistant"]
    content: str


class SimpleChat(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    model: Annotated[str, Meta(min_length=1)]
    messages: Annotated[list[SimpleChatMessage], Meta(min_length=1)]
    max_tokens: Annotated[int, Meta(ge=1)] | UnsetType | None = UNSET
    max_completion_tokens: Annotated[int, Meta(ge=1)] | UnsetType | None = UNSET
    temperature: UnitInterval | UnsetType | None = UNSET
    top_p: UnitInterval | UnsetType | None = UNSET


class SimpleChatLine(msgspec.Struct, gc=False):
    """A request line of an OpenAI batch's input file, its body a SimpleChat (its other keys
    the upload checked)."""

    body: SimpleChat


_decode_chat = msgspec.json.Decoder(SimpleChat).decode
_decode_chat_line = msgspec.json.Decoder(SimpleChatLine).decode
_decode_chat_lines = msgspec.json.Decoder(SimpleChatLine).decode_lines


def decode_simple_chat(
    raw_body: bytes | memoryview | msgspec.Raw, default_max_tokens: int
) -> SimpleParams | None:
    """A chat completions body of the common shape as the SimpleParams it translates to; None
    for any other body (which takes the translation's general path)."""
    try:
        chat = _decode_chat(raw_body)
    except msgspec.DecodeError:
        return None
    return _translated(chat, default_max_tokens)


def decode_simple_chat_line(
    raw_line: bytes | memoryview | msgspec.Raw, default_max_tokens: int
) -> SimpleParams | None:
    """decode_simple_chat of a request line's body, in the one pass over the line."""
    try:
        chat = _decode_chat_line(raw_line).body
    except msgspec.DecodeError:
        return None
    return _translated(chat, default_max_tokens)


def decode_simple_chat_lines(lines: bytes, default_max_tokens: int) -> list[SimpleParams] | None:
    """decode_simple_chat_line of each request line in `lines` (blank lines skipped), all in one
    pass, which spares cutting out each line; None unless every body has the common shape."""
    try:
        chat_lines = _decode_chat_lines(lines)
    except msgspec.DecodeError:
        return None
    translated = []
    for line in chat_lines:
        params = _translated(line.body, default_max_tokens)
        if params is None:
            return None
        translated.append(params)
    return translated


def _translated(chat: SimpleChat, default_max_tokens: int) -> SimpleParams | None:
    system: list[str] = []
    turns: list[SimpleMessage] = []
    for message in chat.messages:
        role = message.role
        if role == "system" or role == "developer":
            system.append(message.content)
        elif (turns and turns[-1].role == role) or (role == "assistant" and not message.content):
            # The general path merges turns of one role and drops empty assistant turns.
            return None
        else:
            turns.append(SimpleMessage(role, message.content))
    if not turns:
        # The general path refuses a conversation without any.
        return None
    joined = "\n".join(system)
    return SimpleParams(
        chat.model,
        chat.max_completion_tokens or chat.max_tokens or default_max_tokens,
        turns,
        joined or UNSET,
        UNSET if chat.temperature is None else chat.temperature,
        UNSET if chat.top_p is None else chat.top_p,
    )
