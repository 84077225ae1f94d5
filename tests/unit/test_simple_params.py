"""SimpleParams, the common shape of params decoded in one pass, is a shortcut only: whatever
takes it ends exactly as it would on the general path (dict, `validate_params`, `reply`)."""

import random
from typing import Any

import msgspec
import pytest

from batchgate.backends.simulator import Simulator
from batchgate.errors import RequestError
from batchgate.lifecycle.params import validate_params
from batchgate.lifecycle.simple_params import decode_simple_params

BASE: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "Hello there"}],
}


def general_outcome(raw: bytes, simulator: Simulator) -> object:
    """What the general path makes of the params: the reply, or the error's type and text."""
    try:
        return simulator.reply(validate_params(msgspec.json.decode(raw)))
    except RequestError as error:
        return error.error_type, error.message


def simple_outcome(raw: bytes, simulator: Simulator) -> object:
    simple = decode_simple_params(raw)
    assert simple is not None
    try:
        return simulator.reply_simple(simple)
    except RequestError as error:
        return error.error_type, error.message


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({}, id="the three required fields"),
        pytest.param({"system": "Be brief.", "temperature": 0.2}, id="system and temperature"),
        pytest.param({"temperature": 1, "top_p": 0, "top_k": 5}, id="whole-number knobs"),
        pytest.param({"system": None, "temperature": None, "top_k": None}, id="explicit nulls"),
        pytest.param(
            {
                "messages": [
                    {"role": "user", "content": "First question"},
                    {"role": "assistant", "content": "An answer"},
                    {"role": "user", "content": "Second  question\twith\ttabs"},
                ]
            },
            id="a conversation, the last turn not single-spaced",
        ),
        pytest.param(
            {"messages": [{"role": "assistant", "content": "I start"}]},
            id="no user turn",
        ),
        pytest.param({"max_tokens": 2}, id="a reply cut by max_tokens"),
        pytest.param({"max_tokens": 2**70}, id="max_tokens beyond 64 bits"),
        pytest.param({"messages": [{"role": "user", "content": "Grüße aus Köln"}]}, id="accents"),
    ],
)
def test_simple_params_get_the_reply_of_the_general_path(changes: dict[str, Any]) -> None:
    raw = msgspec.json.encode({**BASE, **changes})
    for simulator in (Simulator(), Simulator(fault_rate=0.5)):
        assert simple_outcome(raw, simulator) == general_outcome(raw, simulator)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"max_tokens": 0}, id="max_tokens below 1"),
        pytest.param({"max_tokens": True}, id="max_tokens a boolean"),
        pytest.param({"model": ""}, id="empty model"),
        pytest.param({"messages": []}, id="no messages"),
        pytest.param({"messages": [{"role": "system", "content": "x"}]}, id="a role of neither"),
        pytest.param({"messages": [{"content": "x"}]}, id="a message without a role"),
        pytest.param({"temperature": 1.5}, id="temperature above 1"),
        pytest.param({"top_p": -0.1}, id="top_p below 0"),
        pytest.param({"temperature": True}, id="temperature a boolean"),
        pytest.param({"top_k": -1}, id="negative top_k"),
        pytest.param({"stream": True}, id="streaming"),
    ],
)
def test_invalid_params_are_never_simple(changes: dict[str, Any]) -> None:
    raw = msgspec.json.encode({**BASE, **changes})
    assert decode_simple_params(raw) is None
    with pytest.raises(RequestError):
        validate_params(msgspec.json.decode(raw))


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}),
        pytest.param({"system": [{"type": "text", "text": "Be brief."}]}),
        pytest.param({"stop_sequences": ["END"]}),
        pytest.param({"tools": [{"name": "get_time", "input_schema": {"type": "object"}}]}),
        pytest.param({"metadata": {"user_id": "u-1"}}),
        pytest.param({"a_field_of_the_future": 1}),
        pytest.param({"messages": [{"role": "user", "content": "x", "cache_control": {}}]}),
    ],
)
def test_other_valid_shapes_take_the_general_path(changes: dict[str, Any]) -> None:
    raw = msgspec.json.encode({**BASE, **changes})
    assert decode_simple_params(raw) is None
    validate_params(msgspec.json.decode(raw))


WORDS = ["Summarise", "the", "review", "naïve", "café", "日本", "", " ", "  ", "\t", "\n", "x" * 30]


def random_params(rng: random.Random) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": rng.choice(["claude-sonnet-4-5", "claude-sonnet-4-5", "m", ""]),
        "max_tokens": rng.choice([1, 3, 256, 2**63, 1, 3, 256, 0, -1, True, 1.5]),
        "messages": [
            {
                "role": rng.choice(["user", "user", "user", "assistant", "system"]),
                "content": " ".join(rng.choices(WORDS, k=rng.randint(0, 80))),
            }
            for _ in range(rng.choice([0, 1, 1, 1, 2, 3]))
        ],
    }
    for field in ("system", "temperature", "top_p", "top_k"):
        if rng.random() < 0.4:
            params[field] = rng.choice([None, 0, 1, 0.5, 1.0, 0.25, 2, -1, "x", False])
    keys = list(params)
    rng.shuffle(keys)
    return {key: params[key] for key in keys}


def test_whatever_decodes_as_simple_is_valid_and_answered_alike() -> None:
    rng = random.Random(20261125)
    simple_count = 0
    for _ in range(6000):
        raw = msgspec.json.encode(random_params(rng))
        if decode_simple_params(raw) is None:
            continue
        simple_count += 1
        assert simple_outcome(raw, Simulator(fault_rate=0.2)) == general_outcome(
            raw, Simulator(fault_rate=0.2)
        ), raw
    assert simple_count > 500
