"""The common shape of a request's params, decoded and checked in one pass.

Most batch requests are a plain text conversation: `model`, `max_tokens`, `messages` whose
contents are strings, perhaps a `system` string and sampling knobs. msgspec decodes and checks
exactly that shape in C, in a third of the time that decoding into dicts and checking them in
Python takes (lifecycle/params.py). Params of any other shape, valid or not, are not
SimpleParams: they take that general path, which also words the errors. So every SimpleParams
is one that `validate_params` accepts, with the same values (tests/unit/test_simple_params.py).
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


def decode_simple_params(raw_params: bytes | msgspec.Raw) -> SimpleParams | None:
    """The params as SimpleParams when they have that shape and are valid; None otherwise."""
    try:
        return _decode(raw_params)
    except msgspec.DecodeError:
        return None
