"""An OpenAI batch's status and counts, read from its batch's row: what the Batch object shows
and what its events name and carry (lifecycle/events.py)."""

from batchgate.storage.base import BatchRow


def openai_status(batch: BatchRow | None) -> str:
    """`failed` for a batch whose input file failed validation (it has no row)."""
    if batch is None:
        return "failed"
    if batch.status == "in_progress":
        return "in_progress"
    if batch.status == "canceling":
        return "cancelling"
    if batch.cancel_initiated_at is not None:
        return "cancelled"
    if batch.expired and batch.ended_at is not None and batch.ended_at >= batch.expires_at:
        return "expired"
    return "completed"


def openai_request_counts(batch: BatchRow) -> dict[str, int]:
    """`{total, completed, failed}`: failed counts errored, cancelled and expired requests."""
    return {
        "total": batch.total,
        "completed": batch.succeeded,
        "failed": batch.errored + batch.canceled + batch.expired,
    }
