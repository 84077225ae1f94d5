"""What the HTTP handlers share: settings, the store, the keyring and the embedded engine."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from batchgate.api.auth import Keyring
from batchgate.config import Settings
from batchgate.engine.worker import Engine
from batchgate.storage.base import Store


@dataclass
class AppState:
    settings: Settings
    store: Store
    # None when this process serves only the API (`serve --no-worker`).
    engine: Engine | None = None
    clock: Callable[[], float] = field(default=time.time)
    keyring: Keyring = field(init=False)

    def __post_init__(self) -> None:
        self.keyring = Keyring(self.store, self.settings.api_keys)
