"""What the HTTP handlers share: settings, the store and a way to wake the engine."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from batchgate.config import Settings
from batchgate.storage.base import Store


@dataclass
class AppState:
    settings: Settings
    store: Store
    notify_engine: Callable[[], None] = lambda: None
    clock: Callable[[], float] = field(default=time.time)
