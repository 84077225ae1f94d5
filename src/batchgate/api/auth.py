"""API keys: who is calling, and so which batches they can see."""

import hashlib
import hmac

from starlette.requests import Request

from batchgate.api.errors import ApiError


def presented_key(request: Request) -> str | None:
    """SDK 0.x/1.x send `x-api-key`; 2.x send `Authorization: Bearer`."""
    key = request.headers.get("x-api-key")
    if key:
        return key
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def owner_of(request: Request, configured_keys: tuple[str, ...]) -> str:
    """The owner tag of the caller's batches: a hash of their key, never the key itself."""
    key = presented_key(request)
    if configured_keys:
        if key is None:
            raise ApiError(401, "Missing API key: send it as x-api-key or Authorization: Bearer.")
        # Compare against every key so the time taken does not reveal which one nearly matched.
        matches = [hmac.compare_digest(key.encode(), known.encode()) for known in configured_keys]
        if not any(matches):
            raise ApiError(401, "Invalid API key.")
    return hashlib.sha256((key or "").encode()).hexdigest()
