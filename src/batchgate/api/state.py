"""What the HTTP handlers share: settings, the store and the embedded engine."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

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
