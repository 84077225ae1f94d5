"""Which keys can be secrets, and their redaction from text."""

import pytest

from batchgate.backends import upstream_errors
from batchgate.redaction import REDACTED, Secrets, can_be_secret

LONG_KEY = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789"


@pytest.mark.parametrize(
    "placeholder", ["k", "EMPTY", "ollama", "no-key", "sk-no-key-required", "Token-ABC123"]
)
def test_placeholders_and_short_keys_are_no_secrets_and_stay_in_text(placeholder: str) -> None:
    assert not can_be_secret(placeholder)
    text = f"the upstream server answered HTTP 401: no tokens for key {placeholder}"
    assert Secrets([placeholder, None]).redact(text) == text


def test_a_real_key_is_redacted_wherever_it_appears() -> None:
    assert can_be_secret("hunter2hunter2") and can_be_secret(LONG_KEY)
    text = f"bad key {LONG_KEY}; did you mean {LONG_KEY}?"
    assert Secrets([LONG_KEY]).redact(text) == f"bad key {REDACTED}; did you mean {REDACTED}?"


def test_a_key_inside_another_is_redacted_whole() -> None:
    inner = LONG_KEY[:20]
    redacted = Secrets([inner, LONG_KEY]).redact(f"{LONG_KEY} and {inner}")
    assert redacted == f"{REDACTED} and {REDACTED}"


def test_an_unreadable_answer_is_quoted_without_any_part_of_a_key() -> None:
    answer = b"<html>" + b"x" * 189 + LONG_KEY.encode() + b"</html>"
    error = upstream_errors.not_a_message(answer, Secrets([LONG_KEY]))
    assert LONG_KEY[:8] not in error.message
    assert error.message.endswith("xxx[reda'")


def test_a_long_error_page_is_cut_after_its_key_is_redacted() -> None:
    page = "<html>" + "y" * (upstream_errors.MAX_DETAIL_CHARS - 10) + LONG_KEY + "z" * 5000
    error = upstream_errors.status_error(502, {}, page, "", Secrets([LONG_KEY]))
    detail = error.message.removeprefix("the upstream server answered HTTP 502: ")
    assert detail.startswith("<html>yyy") and LONG_KEY[:8] not in detail
    assert detail.endswith(
        f"… ({len(page) - len(LONG_KEY) + len(REDACTED) - 1000} more characters)"
    )
    assert len(detail) < upstream_errors.MAX_DETAIL_CHARS + 40
    short = upstream_errors.status_error(400, {}, {"error": {"message": "bad"}}, "", Secrets([]))
    assert short.message == "the upstream server answered HTTP 400: bad"
