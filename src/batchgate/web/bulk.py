"""Bulk actions on the batches a filter shows: cancel those in progress, delete those ended.

First a preview: how many batches the action would touch, and the newest of them. The action
then touches only batches no newer than that one, so a batch created after the preview is left
alone. A batch that changed meanwhile (ended before its cancel, retried before its delete) is
skipped and counted, never an error.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Literal

from batchgate.service.batches import BatchNotFound, BatchService
from batchgate.storage.base import BatchFilter, BatchRow, WrongState

Action = Literal["cancel", "delete"]
ACTIONS: tuple[Action, ...] = ("cancel", "delete")
# The status a batch must have for each action.
TARGET_STATUS: dict[Action, str] = {"cancel": "in_progress", "delete": "ended"}
EXAMPLES_SHOWN = 20
PAGE = 1000


@dataclass(frozen=True, slots=True)
class Preview:
    action: Action
    count: int
    examples: list[BatchRow]  # the newest few
    through_id: str | None  # the newest batch the action may touch; None when none matches


@dataclass(slots=True)
class Outcome:
    action: Action
    done: int = 0
    skipped: list[str] = field(default_factory=list)


def selection(only: BatchFilter, action: Action) -> BatchFilter | None:
    """The filter of an action's batches among those a filter shows; None when it shows none
    (the list filtered on another status)."""
    target = TARGET_STATUS[action]
    if only.status not in (None, target):
        return None
    return replace(only, status=target)


async def _walk(
    batches: BatchService, owner: str, only: BatchFilter, through_id: str | None
) -> AsyncIterator[BatchRow]:
    """Every batch of the filter, newest first, no newer than `through_id` when given."""
    after_id = None
    while True:
        rows, has_more = await batches.list(owner, PAGE, after_id, None, only)
        for row in rows:
            if through_id is None or row.id <= through_id:
                yield row
        if not has_more or not rows:
            return
        after_id = rows[-1].id


async def preview(batches: BatchService, owner: str, only: BatchFilter, action: Action) -> Preview:
    chosen = selection(only, action)
    if chosen is None:
        return Preview(action, 0, [], None)
    count, examples = 0, list[BatchRow]()
    async for row in _walk(batches, owner, chosen, None):
        count += 1
        if len(examples) < EXAMPLES_SHOWN:
            examples.append(row)
    return Preview(action, count, examples, examples[0].id if examples else None)


async def apply(
    batches: BatchService, owner: str, only: BatchFilter, action: Action, through_id: str
) -> Outcome:
    outcome = Outcome(action)
    chosen = selection(only, action)
    if chosen is None:
        return outcome
    # Collected first: deleting while walking the pages would move the cursor's ground.
    targets = [row.id async for row in _walk(batches, owner, chosen, through_id)]
    for batch_id in targets:
        try:
            if action == "cancel":
                await batches.cancel(owner, batch_id)
            else:
                await batches.delete(owner, batch_id)
        except (WrongState, BatchNotFound):
            outcome.skipped.append(batch_id)
        else:
            outcome.done += 1
    return outcome
