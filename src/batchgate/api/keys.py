"""API keys kept in the database, and the workspaces they belong to.

A key is `bgk_` and 44 random letters and digits. Its first 16 characters are its *prefix*:
public, unique, shown by `batchgate keys list` and used to find the key; the 32 characters after
it (190 random bits) are the secret. The database holds the prefix and a SHA-256 of the whole
key, never the key: a plain hash is enough for long random tokens, which no one can guess from
their hash, and it can be checked on every request without slowing it down.

The batches a key creates belong to its workspace, so every key of a workspace sees them.
Keys of BATCHGATE_API_KEYS are each a workspace of their own, owned by the SHA-256 of the key,
as they always were: their batches stay theirs.
"""

import hashlib
import re
import secrets
import string
from dataclasses import dataclass

from batchgate.storage.base import ApiKeyRow

KEY_START = "bgk_"
PREFIX_LENGTH = 16
RANDOM_CHARACTERS = 44
ALPHABET = string.ascii_letters + string.digits
WORKSPACE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str | None:
    """The prefix of a key in the database's format; None for any other string."""
    if key.startswith(KEY_START) and len(key) == len(KEY_START) + RANDOM_CHARACTERS:
        return key[:PREFIX_LENGTH]
    return None


def check_workspace(name: str) -> str:
    if not WORKSPACE_NAME.fullmatch(name):
        raise ValueError(
            f"workspace name {name!r} must be 1-64 letters, digits, '.', '_' or '-',"
            " starting with a letter or digit"
        )
    return name


@dataclass(frozen=True, slots=True)
class NewKey:
    key: str  # shown once, never stored
    row: ApiKeyRow


def new_key(workspace: str, now: float, read_only: bool = False) -> NewKey:
    key = KEY_START + "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_CHARACTERS))
    row = ApiKeyRow(
        id=f"key_{secrets.token_hex(8)}",
        workspace=check_workspace(workspace),
        prefix=key[:PREFIX_LENGTH],
        key_hash=key_hash(key),
        created_at=now,
        revoked_at=None,
        read_only=read_only,
    )
    return NewKey(key, row)
