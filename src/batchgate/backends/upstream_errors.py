"""How a failed call to an upstream server becomes a `RequestError`.

Shared by the backends that call a server through an official SDK (Anthropic's, OpenAI's):
the error type a status stands for, whether it is worth retrying, how long the server asked
us to wait, and the server's own words, without the key we sent it (batchgate/redaction.py).
"""

import email.utils
import time
from collections.abc import Mapping

from batchgate.errors import RequestError
from batchgate.redaction import Secrets

ERROR_TYPES_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}
# Of the upstream's own words, at most this much is kept in a result: an error page of a proxy
# in front of it would otherwise be stored whole in every errored result.
MAX_DETAIL_CHARS = 1000
# Error types of Anthropic's own vocabulary, which an Anthropic-style upstream names in its body.
ANTHROPIC_ERROR_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "billing_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "rate_limit_error",
        "timeout_error",
        "api_error",
        "overloaded_error",
    }
)


def status_error(
    status: int,
    headers: Mapping[str, str],
    body: object,
    fallback_detail: str,
    secrets: Secrets,
    *,
    upstream_error_type: str | None = None,
) -> RequestError:
    """The error for an HTTP error answer; `upstream_error_type` wins when it is Anthropic's."""
    transient = _should_retry(status, headers)
    if upstream_error_type in ANTHROPIC_ERROR_TYPES:
        error_type = upstream_error_type
    else:
        default = "api_error" if transient else "invalid_request_error"
        error_type = ERROR_TYPES_BY_STATUS.get(status, default)
    detail = error_detail(body) or fallback_detail
    return RequestError(
        error_type,
        f"the upstream server answered HTTP {status}: {shortened(detail, secrets)}",
        transient=transient,
        retry_after=retry_after(headers) if transient else None,
    )


def timeout_error(timeout: float) -> RequestError:
    return RequestError(
        "api_error", f"the upstream server did not answer within {timeout:g} s", transient=True
    )


def connection_error(failure: BaseException, secrets: Secrets) -> RequestError:
    # The SDKs' own message is a bare "Connection error."; the cause says which.
    reason = failure.__cause__ or failure
    return RequestError(
        "api_error",
        f"the upstream server cannot be reached: {shortened(str(reason), secrets)}",
        transient=True,
    )


def unreadable_answer(failure: BaseException, secrets: Secrets) -> RequestError:
    return RequestError(
        "api_error",
        f"the upstream server sent an unreadable answer: {shortened(str(failure), secrets)}",
    )


def not_a_message(answer: bytes, secrets: Secrets) -> RequestError:
    """A 200 whose body is no Message, quoted up to 200 characters: redacted before it is cut,
    so that no part of a key is left at the cut."""
    quoted = secrets.redact(answer.decode(errors="replace"))[:200]
    return RequestError("api_error", f"the upstream server sent an unreadable answer: {quoted!r}")


def shortened(detail: str, secrets: Secrets) -> str:
    """`detail` without the key, then cut to MAX_DETAIL_CHARS (redacted first, so that no part
    of a key is left at the cut)."""
    redacted = secrets.redact(detail)
    if len(redacted) <= MAX_DETAIL_CHARS:
        return redacted
    return f"{redacted[:MAX_DETAIL_CHARS]}… ({len(redacted) - MAX_DETAIL_CHARS} more characters)"


def error_detail(body: object) -> str:
    """The upstream's own words: `error.message` (Anthropic, OpenAI), `message`, `detail`."""
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        for key in ("message", "detail"):
            if body.get(key):
                return str(body[key])
    return str(body) if body else ""


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `retry-after-ms`, else `retry-after` (seconds or an HTTP date)."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def _should_retry(status: int, headers: Mapping[str, str]) -> bool:
    # The same rule as the official SDKs, the server's `x-should-retry` first.
    verdict = headers.get("x-should-retry")
    if verdict in ("true", "false"):
        return verdict == "true"
    return status in (408, 429) or status >= 500
