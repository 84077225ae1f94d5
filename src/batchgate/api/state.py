"""What the HTTP handlers share: settings, the store, the batches' rules (Anthropic's and
OpenAI's), the keyring and the embedded engine."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from batchgate.api.auth import Keyring
from batchgate.config.prices import NO_PRICES, PriceTable
from batchgate.config.settings import Settings
from batchgate.engine.worker import Engine
from batchgate.service.batches import BatchService
from batchgate.service.event_streams import EventStreams
from batchgate.service.openai_batches import OpenAIService
from batchgate.service.webhooks import WebhookService
from batchgate.storage.base import Store


@dataclass
class AppState:
    settings: Settings
    store: Store
    # None when this process serves only the API (`serve --no-worker`).
    engine: Engine | None = None
    prices: PriceTable = NO_PRICES
    clock: Callable[[], float] = field(default=time.time)
    shutting_down: bool = False
    keyring: Keyring = field(init=False)
    batches: BatchService = field(init=False)
    events: EventStreams = field(init=False)
    webhooks: WebhookService = field(init=False)
    openai: OpenAIService = field(init=False)

    def __post_init__(self) -> None:
        self.keyring = Keyring(self.store, self.settings.api_keys)
        self.batches = BatchService(self.store, self.settings, self.clock)
        self.events = EventStreams(self.store)
        self.webhooks = WebhookService(self.store, self.settings, self.clock)
        self.openai = OpenAIService(self.store, self.settings, self.batches)

    def begin_shutdown(self) -> None:
        """SIGTERM or SIGINT: refuse new batches, end the responses that follow batches, and let
        the engine lease no more work while the requests in flight finish
        (api/http_server.py)."""
        self.shutting_down = True
        self.batches.stop_following()
        self.events.close()
        if self.engine is not None:
            self.engine.stop()
