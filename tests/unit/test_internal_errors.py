"""A bug that fails many requests writes a few tracebacks, each counting the ones it stands for."""

import logging

import pytest

from batchgate.engine.internal_errors import REPORT_SECONDS, InternalErrors


def test_a_traceback_a_minute_at_most_counting_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    errors = InternalErrors(clock=lambda: now[0])
    caplog.set_level(logging.ERROR, logger="batchgate.engine")
    for request in range(1000):
        now[0] = request * 0.1  # 100 s in all
        try:
            raise ValueError("a bug")
        except ValueError:
            errors.report(f"r{request}", "claude-*")
    lines = [record for record in caplog.records if record.name == "batchgate.engine"]
    assert [record.getMessage() for record in lines] == [
        "backend failed unexpectedly on r0",
        f"backend failed unexpectedly on r{int(REPORT_SECONDS * 10)}"
        f" ({int(REPORT_SECONDS * 10) - 1} more since the last such line)",
    ]
    assert all(record.exc_info is not None for record in lines)
