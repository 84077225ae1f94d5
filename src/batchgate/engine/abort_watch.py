"""Checks a batch's abort policy (lifecycle/abort_policies.py) after each part of it commits,
and cancels the batch, exactly as a user's cancel does, once the policy says so.

Only batches with a policy cost anything: a read of the batch's counters and usage per part.
The check runs after the part's commit, so every engine sees the same committed totals; two
engines canceling at once is harmless (a cancel of a canceling batch changes nothing).
"""

import logging
import time
from collections.abc import Mapping
from typing import Any

import anyio.to_thread

from batchgate.config.prices import PriceTable
from batchgate.lifecycle.abort_policies import abort_reason
from batchgate.storage.base import Store, StoreUnavailable, WrongState

log = logging.getLogger("batchgate.engine")


class AbortWatch:
    def __init__(self, store: Store, prices: PriceTable) -> None:
        self._store = store
        self._prices = prices

    async def after_part(self, batch_id: str, policy: Mapping[str, Any]) -> bool:
        """Cancels the batch if its policy says so; whether it did."""
        try:
            return await anyio.to_thread.run_sync(self._check, batch_id, policy)
        except StoreUnavailable as error:
            # The next part checks again.
            log.warning("could not check the abort policy of %s: %s", batch_id, error)
            return False

    def _check(self, batch_id: str, policy: Mapping[str, Any]) -> bool:
        batch = self._store.find_batch(batch_id)
        if batch is None or batch.status != "in_progress":
            return False
        reason = abort_reason(policy, batch, self._prices)
        if reason is None:
            return False
        try:
            self._store.cancel_batch(
                None, batch_id, time.time(), {"type": "abort_policy", "message": reason}
            )
        except WrongState:
            return False  # it ended meanwhile
        log.warning("batch canceled by its abort policy: %s", reason, extra={"batch_id": batch_id})
        self._store.announce_work()
        return True
