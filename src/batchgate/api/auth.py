"""API keys: who is calling, and so which workspace's batches they can see.

Keys come from BATCHGATE_API_KEYS and from the database (`batchgate keys`, api/keys.py). The
database's keys are read into memory at most once a second, not once a request; a revoked key is
refused by every process at most REFRESH_SECONDS after the revocation commits.
"""

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio
import anyio.to_thread
from starlette.requests import Request

from batchgate.api.errors import ApiError
from batchgate.api.keys import key_hash, key_prefix
from batchgate.lifecycle.workspaces import workspace_owner
from batchgate.storage.base import ApiKeyRow, Store

# How old the keys in memory may be when a request is checked: the bound on revocation.
REFRESH_SECONDS = 1.0
# A key of the database's format that is not in memory reloads the keys when they are older than
# this, so a new key works at once while a flood of made-up ones costs a few queries a second.
UNKNOWN_KEY_REFRESH_SECONDS = 0.1


def presented_key(request: Request) -> str | None:
    """SDK 0.x/1.x send `x-api-key`; 2.x send `Authorization: Bearer`."""
    key = request.headers.get("x-api-key")
    if key:
        return key
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


@dataclass(frozen=True, slots=True)
class Caller:
    """Whoever presented a key: the owner tag of the batches they see, their workspace (None
    for keys of BATCHGATE_API_KEYS and when no key is required) and whether they may act."""

    owner: str
    workspace: str | None = None
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class LoadedKeys:
    active: dict[str, ApiKeyRow]  # by prefix
    any_created: bool  # revoked keys count: revoking every key never opens the server
    loaded_at: float  # when the query started, so the age is never underestimated


class Keyring:
    """Checks presented keys against the configured ones and names the caller's owner tag."""

    def __init__(
        self,
        store: Store,
        env_keys: tuple[str, ...],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._env_hashes = tuple(key_hash(key) for key in env_keys)
        self._clock = clock
        self._loaded: LoadedKeys | None = None
        self._reload_lock = anyio.Lock()

    def any_configured(self) -> bool:
        """Whether a key is required: one is set in the environment or exists in the database."""
        return bool(self._env_hashes) or bool(self._store.api_keys())

    async def caller(self, request: Request) -> Caller:
        """Who sent the request, by its API key header; raises a 401 for a missing or unknown
        key."""
        return await self.identify(presented_key(request))

    async def identify(self, key: str | None) -> Caller:
        """Who holds `key` (None: no key given); raises a 401 when it is required and missing,
        or unknown."""
        loaded = await self._keys(REFRESH_SECONDS)
        required = bool(self._env_hashes) or loaded.any_created
        if key is None:
            if required:
                raise ApiError(
                    401, "Missing API key: send it as x-api-key or Authorization: Bearer."
                )
            return Caller(key_hash(""))
        digest = key_hash(key)
        # Every env key is compared, so the time taken does not reveal which one nearly matched.
        if any([hmac.compare_digest(digest, known) for known in self._env_hashes]):
            return Caller(digest)
        prefix = key_prefix(key)
        if prefix is not None:
            if prefix not in loaded.active:
                loaded = await self._keys(UNKNOWN_KEY_REFRESH_SECONDS)
            row = loaded.active.get(prefix)
            # Found by its public prefix; the secret part is only ever compared in constant time.
            if row is not None and hmac.compare_digest(digest, row.key_hash):
                return Caller(workspace_owner(row.workspace), row.workspace, row.read_only)
        if required:
            raise ApiError(401, "Invalid API key.")
        return Caller(digest)

    async def _keys(self, max_age: float) -> LoadedKeys:
        loaded = self._loaded
        if loaded is not None and self._clock() - loaded.loaded_at < max_age:
            return loaded
        # One reload at a time: requests arriving meanwhile wait for it instead of piling on.
        async with self._reload_lock:
            loaded = self._loaded
            if loaded is None or self._clock() - loaded.loaded_at >= max_age:
                started = self._clock()
                rows = await anyio.to_thread.run_sync(self._store.api_keys)
                active = {row.prefix: row for row in rows if row.revoked_at is None}
                loaded = LoadedKeys(active, bool(rows), started)
                self._loaded = loaded
            return loaded
