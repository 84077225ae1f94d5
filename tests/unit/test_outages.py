"""The engine's patience with an unavailable database: retried until back, logged once."""

import asyncio
import logging

import pytest

from batchgate.engine import outages
from batchgate.engine.outages import Outages
from batchgate.storage.base import StoreFull, StoreUnavailable


def flaky(failures: list[StoreUnavailable]) -> object:
    def call() -> str:
        if failures:
            raise failures.pop(0)
        return "saved"

    return call


def test_calls_are_retried_until_the_database_is_back_and_the_outage_logged_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outages, "RETRY_DELAYS", (0.001,))
    failures = [StoreUnavailable("the database is unavailable: gone")] * 5
    shared = Outages()

    async def two_callers() -> list[str]:
        return list(
            await asyncio.gather(shared.retry(flaky(list(failures))), shared.retry(flaky([])))
        )

    with caplog.at_level(logging.INFO, logger="batchgate.engine"):
        assert asyncio.run(two_callers()) == ["saved", "saved"]
    assert [record.message for record in caplog.records] == [
        "the database is unavailable: gone; the engine waits for it and retries",
        caplog.records[1].message,
    ]
    assert caplog.records[1].message.startswith("the database is back after ")


def test_other_errors_are_not_retried() -> None:
    def broken() -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError):
        asyncio.run(Outages().retry(broken))


def test_the_delay_grows_then_holds() -> None:
    delays = [outages.retry_delay(attempt) for attempt in range(10)]
    assert delays == sorted(delays)
    assert delays[0] < 0.1 and delays[-1] == delays[-2] == outages.RETRY_DELAYS[-1]
    assert issubclass(StoreFull, StoreUnavailable)
