"""Idempotent creates: an `Idempotency-Key` makes a create safe to retry.

(IETF draft-ietf-httpapi-idempotency-key-header.) The first create with a key claims it, in the
database, for the digest of its body, and records its batch in the create's own transaction.
Another create with the key then gets that batch instead of a second one when its body is the
same (a retry), and is refused when it is not; while the first is still being stored it is told
to retry (409, which the SDKs retry by themselves). Keys belong to the caller's workspace and
are kept `idempotency_seconds`, across restarts and by every process sharing the database.
"""

import hashlib
from dataclasses import dataclass

# A claim still without a batch this long after it was made belongs to a create whose process
# died (a create is stored within seconds): a retry then takes the key over.
ABANDONED_CLAIM_SECONDS = 600.0
# Keys are what the client chose; long ones are refused rather than stored.
MAX_KEY_LENGTH = 255


class IdempotencyKeyReused(Exception):
    """The key was used for a create with a different body: 422 on the wire."""


class IdempotentCreateInProgress(Exception):
    """The first create with the key is still being stored: 409 on the wire (retried)."""


@dataclass(frozen=True, slots=True)
class IdempotentCreate:
    """A create's key, and the digest of its body that a retry must match."""

    key: str
    digest: str

    @classmethod
    def of(cls, key: str, body: bytes | bytearray) -> "IdempotentCreate":
        return cls(key, hashlib.sha256(body).hexdigest())
