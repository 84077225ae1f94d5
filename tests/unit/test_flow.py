"""FlowControl: concurrency with AIMD, pauses, per-minute buckets, fair turns, withdrawal."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from batchgate.engine.flow import FlowControl, FlowLimits, Overdue, Withdrawn
from batchgate.engine.token_bucket import TokenBucket

T = TypeVar("T")
FAR = 1e12  # an expires_at that never comes


def run(test: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(test())  # type: ignore[arg-type]


def flow(max_concurrency: int = 1, **limits: int) -> FlowControl:
    return FlowControl(FlowLimits(max_concurrency=max_concurrency, **limits))


async def settle() -> None:
    """Lets every task that can run, run."""
    for _ in range(5):
        await asyncio.sleep(0)


def test_requests_start_at_once_up_to_the_concurrency_then_as_others_finish() -> None:
    async def scenario() -> None:
        control = flow(max_concurrency=2)
        first = await control.admit("w", "a", 0, 0, FAR)
        await control.admit("w", "a", 0, 0, FAR)
        third = asyncio.create_task(control.admit("w", "a", 0, 0, FAR))
        await settle()
        assert not third.done()
        control.finish(first)
        await settle()
        assert third.done()
        assert control.in_flight == 2

    run(scenario)


def test_waiting_requests_take_turns_across_batches() -> None:
    async def scenario() -> list[str]:
        control = flow(max_concurrency=1)
        holder = await control.admit("w", "big", 0, 0, FAR)
        order: list[str] = []

        async def request(batch_id: str, chunk_no: int) -> None:
            ticket = await control.admit("w", batch_id, chunk_no, 0, FAR)
            order.append(f"{batch_id}{chunk_no}")
            await asyncio.sleep(0)
            control.finish(ticket)

        waiting = [asyncio.create_task(request("big", chunk_no)) for chunk_no in (3, 2, 1, 0)]
        await settle()
        waiting.append(asyncio.create_task(request("small", 0)))
        await settle()
        control.finish(holder)
        await asyncio.gather(*waiting)
        return order

    # Lowest chunk first within a batch; the small batch is second, not last.
    assert run(scenario) == ["big0", "small0", "big1", "big2", "big3"]


def test_workspaces_take_turns_by_weight_before_their_batches_do() -> None:
    async def scenario() -> list[str]:
        control = FlowControl(FlowLimits(max_concurrency=1), weights={"heavy": 2})
        holder = await control.admit("w", "first", 0, 0, FAR)
        order: list[str] = []

        async def request(workspace: str, batch_id: str) -> None:
            ticket = await control.admit(workspace, batch_id, 0, 0, FAR)
            order.append(batch_id)
            await asyncio.sleep(0)
            control.finish(ticket)

        # A backlog of three batches in one workspace, two in the weighted one, then one more.
        waiting = [
            asyncio.create_task(request(workspace, batch_id))
            for workspace, batch_id in [
                *[("backlog", f"b{i}") for i in (1, 2, 3) for _ in range(3)],
                *[("heavy", f"h{i}") for i in (1, 2) for _ in range(2)],
                ("small", "s1"),
            ]
        ]
        await settle()
        control.finish(holder)
        await asyncio.gather(*waiting)
        return order

    # Not one turn per batch (b1 b2 b3 h1 h2 s1 ...): one per workspace, two for "heavy".
    assert run(scenario) == [
        *("b1", "h1", "h2", "s1"),
        *("b2", "h1", "h2"),
        *("b3", "b1", "b2", "b3", "b1", "b2", "b3"),
    ]


def test_overload_halves_the_concurrency_once_per_round_then_successes_raise_it() -> None:
    async def scenario() -> None:
        control = flow(max_concurrency=8)
        tickets = [await control.admit("w", "a", 0, 0, FAR) for _ in range(8)]
        for ticket in tickets[:3]:
            control.overloaded(ticket, pause=0)
            control.finish(ticket)
        # Three overloads of requests sent at the same time are one signal, not three.
        assert control.concurrency == 4
        # Successes of requests sent before the cut say nothing about the new limit.
        for ticket in tickets[3:]:
            control.finish(ticket, succeeded=True)
        assert control.concurrency == 4
        for _ in range(4):
            control.finish(await control.admit("w", "a", 0, 0, FAR), succeeded=True)
        assert control.concurrency == 5
        later = await control.admit("w", "a", 0, 0, FAR)
        control.overloaded(later, pause=0)
        control.finish(later)
        assert control.concurrency == 2
        for _ in range(40):
            control.finish(await control.admit("w", "a", 0, 0, FAR), succeeded=True)
        assert control.concurrency == 8

    run(scenario)


def test_an_overload_pauses_the_route() -> None:
    async def scenario() -> float:
        control = flow(max_concurrency=4)
        ticket = await control.admit("w", "a", 0, 0, FAR)
        control.overloaded(ticket, pause=0.2)
        control.finish(ticket)
        started = time.monotonic()
        await control.admit("w", "a", 0, 0, FAR)
        return time.monotonic() - started

    assert 0.18 <= run(scenario) < 1


def test_requests_per_minute_are_paced() -> None:
    async def scenario() -> list[float]:
        control = flow(max_concurrency=100, requests_per_minute=600)
        started = time.monotonic()
        moments = []
        for _ in range(13):
            control.finish(await control.admit("w", "a", 0, 0, FAR))
            moments.append(time.monotonic() - started)
        return moments

    moments = run(scenario)
    # A second's worth (10) at once, then one every 0.1 s.
    assert moments[9] < 0.05
    assert 0.25 <= moments[12] < 0.6


def test_output_tokens_in_debt_hold_the_next_request_back() -> None:
    async def scenario() -> float:
        control = flow(max_concurrency=4, output_tokens_per_minute=6000)
        control.finish(await control.admit("w", "a", 0, 0, FAR), output_tokens=150)
        started = time.monotonic()
        await control.admit("w", "a", 0, 0, FAR)
        return time.monotonic() - started

    # 100 tokens a second; 150 spent from a full bucket of 100 leaves a debt of 50.
    assert 0.4 <= run(scenario) < 1


def test_a_request_larger_than_the_input_bucket_goes_once_it_is_full() -> None:
    async def scenario() -> float:
        control = flow(max_concurrency=4, input_tokens_per_minute=60_000)
        await control.admit("w", "a", 0, 1200, FAR)
        started = time.monotonic()
        await control.admit("w", "a", 0, 1, FAR)
        return time.monotonic() - started

    assert 0.18 <= run(scenario) < 0.8


def test_a_canceled_batch_stops_waiting() -> None:
    async def scenario() -> None:
        control = flow(max_concurrency=1)
        await control.admit("w", "a", 0, 0, FAR)
        canceled = asyncio.create_task(control.admit("w", "b", 0, 0, FAR))
        other = asyncio.create_task(control.admit("w", "c", 0, 0, FAR))
        await settle()
        control.withdraw("b")
        with pytest.raises(Withdrawn):
            await canceled
        assert not other.done()
        other.cancel()

    run(scenario)


def test_a_request_still_waiting_when_its_batch_expires_is_overdue() -> None:
    async def scenario() -> None:
        control = flow(max_concurrency=1)
        await control.admit("w", "a", 0, 0, FAR)
        with pytest.raises(Overdue):
            await control.admit("w", "b", 0, 0, time.time() + 0.05)
        assert control.in_flight == 1

    run(scenario)


def test_a_request_canceled_as_it_is_admitted_gives_its_place_to_the_next() -> None:
    async def scenario() -> None:
        control = flow(max_concurrency=1)
        holder = await control.admit("w", "a", 0, 0, FAR)
        doomed = asyncio.create_task(control.admit("w", "a", 0, 0, FAR))
        patient = asyncio.create_task(control.admit("w", "a", 0, 0, FAR))
        await settle()
        control.finish(holder)  # admits `doomed`, which has not resumed yet
        doomed.cancel()
        await settle()
        assert patient.done()
        assert control.in_flight == 1

    run(scenario)


def test_token_bucket_refills_continuously_up_to_a_second_of_rate() -> None:
    bucket = TokenBucket(per_minute=120, now=0.0)  # 2 a second, holds 2
    assert bucket.wait(2, now=0.0) == 0
    bucket.spend(2, now=0.0)
    assert bucket.wait(1, now=0.0) == pytest.approx(0.5)
    assert bucket.wait(1, now=10.0) == 0
    bucket.spend(5, now=10.0)  # more than it holds: a debt of 3
    assert bucket.wait(0, now=10.0) == pytest.approx(1.5)
