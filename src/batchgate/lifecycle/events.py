"""A batch's events (docs/events.md): their types, their ids, and the thin data each carries.

Stores write an event in the transaction of the state change that causes it, with `event_data`
of the batch as that change left it; streams and webhooks send what was stored. An OpenAI batch
(`batch_…`) has OpenAI's events instead: its end, named as OpenAI names it, and its failure at
validation, each with only the batch's id; and, our extension, batch.progress with the counts
of its Batch object.
"""

from datetime import UTC, datetime
from typing import Any

from batchgate.lifecycle.ids import OPENAI_BATCH_PREFIX
from batchgate.lifecycle.openai_status import openai_request_counts, openai_status
from batchgate.storage.base import BatchRow

CREATED = "batch.created"
PROGRESS = "batch.progress"
CANCELING = "batch.canceling"
ENDED = "batch.ended"
ARCHIVED = "batch.archived"
DELETED = "batch.deleted"
EVENT_TYPES = (CREATED, PROGRESS, CANCELING, ENDED, ARCHIVED, DELETED)
# OpenAI batches' events, by OpenAI's names (its batch webhooks).
OPENAI_COMPLETED = "batch.completed"
OPENAI_FAILED = "batch.failed"
OPENAI_EXPIRED = "batch.expired"
OPENAI_CANCELLED = "batch.cancelled"
OPENAI_EVENT_TYPES = (OPENAI_COMPLETED, OPENAI_FAILED, OPENAI_EXPIRED, OPENAI_CANCELLED)
ALL_EVENT_TYPES = EVENT_TYPES + OPENAI_EVENT_TYPES
# The events after which a batch has no more: a batch's stream ends with one.
LAST_EVENT_TYPES = (ENDED, *OPENAI_EVENT_TYPES)

# batch.progress: at most one per batch in this many seconds, while its counts move.
PROGRESS_INTERVAL_SECONDS = 1.0


def timestamp(seconds: float | None) -> str | None:
    """RFC 3339 in UTC, as the batch object writes its times."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def event_id(batch_id: str, seq: int) -> str:
    """Unique and the same wherever the event is sent: the webhook-id of its deliveries."""
    return f"evt_{batch_id.removeprefix('msgbatch_')}_{seq}"


def is_openai(batch_id: str) -> bool:
    return batch_id.startswith(OPENAI_BATCH_PREFIX)


def openai_data(batch_id: str) -> dict[str, Any]:
    """An OpenAI batch event's data: the batch's id, as OpenAI's webhooks send it."""
    return {"id": batch_id}


def openai_progress_data(batch: BatchRow) -> dict[str, Any]:
    """An OpenAI batch's batch.progress data: the Batch object's id, status and counts."""
    return {
        "id": batch.id,
        "object": "batch",
        "status": openai_status(batch),
        "request_counts": openai_request_counts(batch),
    }


def has_event(batch_id: str, event_type: str) -> bool:
    """Whether the batch has an event for `event_type`: an OpenAI batch has its progress and its
    end only."""
    return event_type in (PROGRESS, ENDED) or not is_openai(batch_id)


def stored_event(batch: BatchRow, event_type: str) -> tuple[str, dict[str, Any]] | None:
    """The type and data stored for `event_type` of `batch`, if it has that event."""
    if not has_event(batch.id, event_type):
        return None
    if not is_openai(batch.id):
        return event_type, event_data(batch, event_type)
    if event_type == PROGRESS:
        return PROGRESS, openai_progress_data(batch)
    return f"batch.{openai_status(batch)}", openai_data(batch.id)


def ended_reason(batch: BatchRow) -> str:
    if batch.cancel_initiated_at is not None:
        return "canceled"
    return "expired" if batch.expired else "completed"


def event_data(batch: BatchRow, event_type: str) -> dict[str, Any]:
    """The batch as the event saw it: ids, status, counts and usage, never requests or results."""
    data: dict[str, Any] = {
        "id": batch.id,
        "type": "message_batch",
        "processing_status": batch.status,
        "request_counts": batch.request_counts,
        "usage": batch.total_usage.token_counts(),
        "created_at": timestamp(batch.created_at),
        "ended_at": timestamp(batch.ended_at),
    }
    if batch.cancel_reason is not None:
        data["cancel_reason"] = batch.cancel_reason
    if event_type == ENDED:
        data["reason"] = ended_reason(batch)
    if event_type == DELETED:
        data["processing_status"] = "deleted"
    return data
