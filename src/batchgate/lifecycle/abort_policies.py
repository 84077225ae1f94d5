"""Abort policies: when a batch cancels itself (`abort` in the create body).

A policy holds any of three limits; the first one a batch is past is the reason it cancels:

    errored_share, min_results   once min_results requests have ended, a share of errored
                                 above errored_share (a broken prompt template, a bad model
                                 name: 100 requests wasted, not 100,000)
    max_output_tokens            more output tokens than this so far
    max_cost_usd                 a cost above this so far (needs a price table)
"""

from collections.abc import Mapping
from typing import Any

from batchgate.config.prices import PriceTable
from batchgate.storage.base import BatchRow


def abort_reason(policy: Mapping[str, Any], batch: BatchRow, prices: PriceTable) -> str | None:
    """Why the batch must cancel itself now, or None while it is within its policy."""
    ended = batch.total - batch.processing
    share_limit = policy.get("errored_share")
    if share_limit is not None and ended >= policy["min_results"]:
        share = batch.errored / ended
        if share > share_limit:
            return f"errored share {share:.2f} > {share_limit:.2f} after {ended} results"
    max_output_tokens = policy.get("max_output_tokens")
    if max_output_tokens is not None:
        output_tokens = batch.total_usage.output_tokens
        if output_tokens > max_output_tokens:
            return f"output tokens {output_tokens} > {max_output_tokens}"
    max_cost = policy.get("max_cost_usd")
    if max_cost is not None:
        cost = prices.cost(batch.usage)
        if cost is not None and cost > max_cost:
            return f"cost {cost:.4f} USD > {max_cost:.4f} USD"
    return None
