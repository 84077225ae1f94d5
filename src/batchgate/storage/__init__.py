"""Where batches, their requests and their results live."""

from batchgate.storage.base import Store, open_store

__all__ = ["Store", "open_store"]
