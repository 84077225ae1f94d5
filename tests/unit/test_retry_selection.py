"""Which result lines a retry takes, of a Message Batch's and of an OpenAI batch's alike: each
line's result type read from either format, and the error type that narrows errored ones."""

import orjson

from batchgate.lifecycle import openai_results, results
from batchgate.service.retries import OPENAI_FAILED, RetrySelection, result_type


def test_each_format_says_its_result_type() -> None:
    lines = {
        "succeeded": [
            results.succeeded("a", {"type": "message"}),
            openai_results.succeeded("a", {"object": "chat.completion"}),
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
        OPENAI_FAILED.takes(orjson.loads(line))
        for line in (
            openai_results.succeeded("a", {}),
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
