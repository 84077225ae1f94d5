"""What the HTTP handlers share: settings and the store."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from batchgate.config import Settings
from batchgate.storage.base import Store


@dataclass
class AppState:
    settings: Settings
    store: Store
    clock: Callable[[], float] = field(default=time.time)
