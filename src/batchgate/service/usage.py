"""Usage for chargeback: the tokens, requests by outcome and cost of a workspace's batches,
grouped by model and/or day (`GET /v1/usage`).

Batches count on the UTC day they were created. Tokens are those of succeeded requests, kept
per batch and model as parts commit (storage: batch_usage), so a report reads a row per batch
and model, never the results. Grouped by model, the requests that produced no message (errored,
canceled, expired) have no model: they form the group whose model is None.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

import anyio.to_thread

from batchgate.config.prices import PriceTable
from batchgate.storage.base import ResultCounts, Store, TokenUsage

GROUPINGS = ("model", "day")
DAY_SECONDS = 86_400


@dataclass(slots=True)
class UsageGroup:
    day: int | None = None
    model: str | None = None
    usage: TokenUsage = field(default_factory=TokenUsage)
    requests: ResultCounts = field(default_factory=ResultCounts)
    # USD, None without a price table.
    cost: float | None = None


async def usage_report(
    store: Store,
    prices: PriceTable,
    owner: str,
    starting_at: float,
    ending_at: float,
    group_by: Sequence[str],
) -> list[UsageGroup]:
    """The groups of the owner's batches created in [starting_at, ending_at), in order."""
    tokens, outcomes = await anyio.to_thread.run_sync(
        store.usage_report, owner, starting_at, ending_at
    )
    by_model, by_day = "model" in group_by, "day" in group_by
    groups: dict[tuple[int | None, str | None], UsageGroup] = {}

    def group(day: int, model: str | None) -> UsageGroup:
        key = (day if by_day else None, model if by_model else None)
        found = groups.get(key)
        if found is None:
            found = groups[key] = UsageGroup(*key, cost=0.0 if prices else None)
        return found

    for row in tokens:
        into = group(row.day, row.model)
        into.usage += row.usage
        cost = prices.cost([(row.model, row.usage)])
        if cost is not None and into.cost is not None:
            into.cost += cost
        if by_model:
            into.requests.succeeded += row.usage.requests
    for outcome in outcomes:
        into = group(outcome.day, None)
        counts = outcome.counts
        if not by_model:
            into.requests.succeeded += counts.succeeded
        into.requests.errored += counts.errored
        into.requests.canceled += counts.canceled
        into.requests.expired += counts.expired
    # Grouped by model, days whose requests all succeeded leave an empty model-less group.
    kept = [g for g in groups.values() if not by_model or g.model is not None or g.requests.total]
    return sorted(kept, key=lambda g: (g.day or 0, g.model is None, g.model or ""))
