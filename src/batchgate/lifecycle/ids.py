"""Identifiers in Anthropic's style.

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


def new_batch_id() -> str:
    global _last_micros
    with _lock:
        _last_micros = max(_last_micros + 1, time.time_ns() // 1000)
        micros = _last_micros
    return f"{BATCH_ID_PREFIX}{_base62(micros, TIME_DIGITS)}{_random_base62(RANDOM_DIGITS)}"


def new_request_id() -> str:
    return f"req_{secrets.token_hex(12)}"
