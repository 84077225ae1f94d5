"""Identifiers in Anthropic's style (and OpenAI's, for its Batch API).

Batch ids start with the creation time in fixed-width base62, so sorting ids sorts batches by age:
list pages and their cursors need nothing else, even when the cursor's batch has been deleted.
"""

import secrets
import threading
import time

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # ASCII order
TIME_DIGITS = 9  # microseconds since 1970 fit in 62**9 until the year 2398
RANDOM_DIGITS = 15
BATCH_ID_PREFIX = "msgbatch_"

_last_micros = 0
_lock = threading.Lock()


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits))


def _random_base62(width: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(width))


def _sortable_id(prefix: str) -> str:
    global _last_micros
    with _lock:
        _last_micros = max(_last_micros + 1, time.time_ns() // 1000)
        micros = _last_micros
    return f"{prefix}{_base62(micros, TIME_DIGITS)}{_random_base62(RANDOM_DIGITS)}"


def new_batch_id() -> str:
    return _sortable_id(BATCH_ID_PREFIX)


OPENAI_BATCH_PREFIX = "batch_"


def new_openai_batch_id() -> str:
    """An OpenAI batch's id (`batch_…`), sorting by creation time as Anthropic's do."""
    return _sortable_id(OPENAI_BATCH_PREFIX)


def new_file_id() -> str:
    """A file's id (`file-…`), sorting by creation time."""
    return _sortable_id("file-")


def file_ids_before(when: float) -> str:
    """The least id of a file made at `when` (seconds since 1970): every id of a file made
    earlier sorts before it."""
    return f"file-{_base62(int(when * 1_000_000), TIME_DIGITS)}"


def new_request_id() -> str:
    return f"req_{secrets.token_hex(12)}"
