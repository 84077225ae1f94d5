"""The webhook deliveries of a batch's events, as its page lists them: to which endpoint, how
the latest attempt went, and when the next one is due."""

from dataclasses import dataclass

from batchgate.storage.base import BatchEvent, DeliveryRow

SHOWN = 50


@dataclass(frozen=True, slots=True)
class ShownDelivery:
    id: int
    # The workspace endpoint it goes to; None for the batch's own webhook_url.
    webhook_id: str | None
    event_type: str
    url: str
    state: str  # pending, delivered or failed
    attempts: int
    status_code: int | None  # the latest attempt's answer
    error: str | None  # the latest attempt's failure, when it got no answer
    next_attempt_at: float | None
    delivered_at: float | None

    @property
    def redeliverable(self) -> bool:
        """A delivery to an endpoint that is not waiting for its next attempt anyway."""
        return self.webhook_id is not None and self.state != "pending"


def shown(deliveries: list[DeliveryRow], events: list[BatchEvent]) -> list[ShownDelivery]:
    types = {event.number: event.type for event in events}
    listed = []
    for delivery in deliveries:
        latest = delivery.attempt_log[-1] if delivery.attempt_log else {}
        listed.append(
            ShownDelivery(
                delivery.id,
                delivery.webhook_id,
                types.get(delivery.event_number, ""),
                delivery.url,
                delivery.state,
                delivery.attempts,
                latest.get("status_code"),
                latest.get("error"),
                delivery.next_attempt_at if delivery.state == "pending" else None,
                delivery.delivered_at,
            )
        )
    return listed
