"""A read of one batch by its id, made where the store answers it quickest (Store's
`point_reads_inline`): a retrieve is polled while the engine runs thousands of requests."""

from collections.abc import Callable
from typing import TypeVar, TypeVarTuple

import anyio.to_thread

from batchgate.storage.base import Store

T = TypeVar("T")
Arguments = TypeVarTuple("Arguments")


async def point_read(store: Store, read: Callable[[*Arguments], T], *arguments: *Arguments) -> T:
    if store.point_reads_inline:
        return read(*arguments)
    return await anyio.to_thread.run_sync(read, *arguments)
