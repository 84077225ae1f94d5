"""A route's upstream troubles in the log: a few lines, however many calls fail."""

import logging

import pytest

from batchgate.engine.upstream_trouble import QUIET_SECONDS, REPORT_SECONDS, UpstreamTrouble
from batchgate.errors import RequestError

OVERLOADED = RequestError("overloaded_error", "the upstream answered HTTP 529", transient=True)
RESET = RequestError("api_error", "the upstream server cannot be reached: reset", transient=True)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def messages(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(record.levelno, record.getMessage()) for record in caplog.records]


def test_a_storm_of_failures_is_one_line_then_one_a_minute_then_one_when_it_is_over(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    trouble = UpstreamTrouble("claude-*", 16, clock)
    with caplog.at_level(logging.INFO, logger="batchgate.engine"):
        trouble.failed(OVERLOADED, retried=True, concurrency=8, paused=0.5)
        for _ in range(999):
            trouble.failed(RESET, retried=True, concurrency=8, paused=None)
            trouble.succeeded(concurrency=8)
        assert messages(caplog) == [
            (
                logging.WARNING,
                "route claude-*: the upstream failed a call (overloaded_error: the upstream"
                " answered HTTP 529), retried; concurrency 8 of 16, paused 0.5 s",
            )
        ]
        assert caplog.records[0].route == "claude-*"

        clock.now += REPORT_SECONDS
        trouble.failed(OVERLOADED, retried=False, concurrency=4, paused=1.0)
        clock.now += QUIET_SECONDS - 1
        trouble.succeeded(concurrency=4)
        clock.now += 1
        trouble.succeeded(concurrency=5)
    assert messages(caplog)[1:] == [
        (
            logging.WARNING,
            "route claude-*: calls keep failing; in 60 s, 1001 of 2000 calls failed"
            " (overloaded_error 2, api_error 999), 1000 of them retried; concurrency 4 of 16",
        ),
        (
            logging.INFO,
            "route claude-*: the upstream answers again; in 90 s, 1001 of 2002 calls failed"
            " (overloaded_error 2, api_error 999), 1000 of them retried; concurrency 5 of 16",
        ),
    ]


def test_once_over_the_next_failure_starts_afresh_and_successes_alone_say_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    trouble = UpstreamTrouble("*", 16, clock)
    with caplog.at_level(logging.INFO, logger="batchgate.engine"):
        for _ in range(100):
            trouble.succeeded(concurrency=16)
        assert caplog.records == []
        trouble.failed(RESET, retried=True, concurrency=16, paused=None)
        clock.now += QUIET_SECONDS
        trouble.succeeded(concurrency=16)
        trouble.failed(RESET, retried=False, concurrency=16, paused=None)
    assert [message for _, message in messages(caplog)] == [
        "route *: the upstream failed a call (api_error: the upstream server cannot be reached:"
        " reset), retried; concurrency 16 of 16",
        "route *: the upstream answers again; in 30 s, 1 of 2 calls failed (api_error 1), 1 of"
        " them retried; concurrency 16 of 16",
        "route *: the upstream failed a call (api_error: the upstream server cannot be reached:"
        " reset), not retried; concurrency 16 of 16",
    ]
