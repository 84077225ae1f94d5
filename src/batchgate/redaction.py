"""Which keys are secrets, and hiding them in the text batchgate writes.

A key can turn up in text that batchgate itself produces: an upstream's error that quotes the
key it was sent, an exception's message, a log line, `config show`. There each key that can be
a secret is replaced by `[redacted]`. A key can be a secret when it has at least
MIN_SECRET_LENGTH characters and is not one of the well-known PLACEHOLDERS. Local servers run
with placeholders (`EMPTY`, `ollama`, `sk-no-key-required`) or very short keys: they guard
nothing, and cutting every `EMPTY` or every letter `k` out of a text would leave it unreadable.

Answers are never redacted: a model cannot know the key, and a successful answer is the
user's, paid for, whatever it contains.
"""

from collections.abc import Iterable

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 8
# Keys that servers' own documentation hands out for local use (compared case-insensitively):
# llama.cpp's and LocalAI's, vLLM's, LM Studio's. Shorter ones (EMPTY, ollama, none, dummy)
# are below MIN_SECRET_LENGTH already.
PLACEHOLDERS = frozenset({"sk-no-key-required", "token-abc123", "lm-studio"})


def can_be_secret(key: str) -> bool:
    return len(key) >= MIN_SECRET_LENGTH and key.lower() not in PLACEHOLDERS


class Secrets:
    """The keys among `keys` that can be secrets; `redact` hides them in a text."""

    def __init__(self, keys: Iterable[str | None]) -> None:
        # Longest first: a key that contains another is hidden whole, not around the other.
        self._secrets = sorted(
            {key for key in keys if key is not None and can_be_secret(key)}, key=len, reverse=True
        )

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


NO_SECRETS = Secrets(())
