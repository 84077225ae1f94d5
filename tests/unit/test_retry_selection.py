"""Which result lines a retry takes, of a Message Batch's and of an OpenAI batch's alike: each
line's result type read from either format, and the error type that narrows errored ones."""

import orjson

from batchgate.lifecycle import openai_results, results
from batchgate.service.retries import OpenAIRetrySelection, RetrySelection, result_type


def test_each_format_says_its_result_type() -> None:
    lines = {
        "succeeded": [
            results.succeeded("a", {"type": "message"}),
            openai_results.succeeded("a", b'{"object":"chat.completion"}'),
        ],
        "errored": [
            results.errored("b", "api_error", "down"),
            openai_results.errored("b", "api_error", "down"),
        ],
        "canceled": [results.canceled("c"), openai_results.canceled("c")],
        "expired": [results.expired("d"), openai_results.expired("d")],
    }
    for kind, pair in lines.items():
        assert [result_type(orjson.loads(line)) for line in pair] == [kind, kind]


def test_an_openai_retry_takes_its_error_files_lines_and_error_types_narrow_either() -> None:
    taken = [
        OpenAIRetrySelection().takes(orjson.loads(line))
        for line in (
            openai_results.succeeded("a", b"{}"),
            openai_results.errored("b", "invalid_request_error", "bad"),
            openai_results.canceled("c"),
            openai_results.expired("d"),
        )
    ]
    assert taken == [False, True, True, True]
    overloaded = RetrySelection(error_types=frozenset({"overloaded_error"}))
    for errored in (results.errored, openai_results.errored):
        assert overloaded.takes(orjson.loads(errored("x", "overloaded_error", "busy")))
        assert not overloaded.takes(orjson.loads(errored("x", "api_error", "down")))


def test_an_openai_retry_picks_by_status_code_or_class_error_type_and_what_never_ran() -> None:
    lines = {
        name: orjson.loads(line)
        for name, line in {
            "ok": openai_results.succeeded("a", b"{}"),
            "bad": openai_results.errored("b", "invalid_request_error", "bad"),
            "limited": openai_results.errored("c", "rate_limit_error", "slow down"),
            "down": openai_results.errored("d", "api_error", "down"),
            "busy": openai_results.errored("e", "overloaded_error", "busy"),
            "cancelled": openai_results.canceled("f"),
            "expired": openai_results.expired("g"),
        }.items()
    }

    def taken(selection: OpenAIRetrySelection) -> set[str]:
        return {name for name, line in lines.items() if selection.takes(line)}

    failed = {"bad", "limited", "down", "busy", "cancelled", "expired"}
    assert taken(OpenAIRetrySelection()) == failed
    assert taken(OpenAIRetrySelection(frozenset({"5xx", "429"}))) == failed - {"bad"}
    assert taken(OpenAIRetrySelection(frozenset({"2xx"}))) == {"ok", "cancelled", "expired"}
    assert taken(
        OpenAIRetrySelection(frozenset(), include_cancelled=False, include_expired=True)
    ) == {"expired"}
    assert taken(
        OpenAIRetrySelection(
            error_types=frozenset({"overloaded_error", "rate_limit_error"}),
            include_cancelled=False,
            include_expired=False,
        )
    ) == {"limited", "busy"}
    # The error types narrow the failed answers only: a 2xx asked for has none.
    assert taken(
        OpenAIRetrySelection(
            frozenset({"200", "500"}),
            frozenset({"overloaded_error"}),
            include_cancelled=False,
            include_expired=False,
        )
    ) == {"ok"}
