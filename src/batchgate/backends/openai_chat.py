"""A backend that answers through any OpenAI-compatible `/v1/chat/completions` server."""

import email.utils
import time
from collections.abc import Mapping
from typing import Any

import openai

from batchgate.backends.translate_openai import (
    chat_request_from_params,
    message_from_chat_completion,
)
from batchgate.errors import RequestError

# Servers read it from the body, but the SDK's `create` has no such argument.
_NON_OPENAI_FIELDS = ("top_k",)
# The SDK insists on a key; local servers take none, and falling back to OPENAI_API_KEY
# would hand the user's OpenAI key to whatever server base_url names.
_PLACEHOLDER_API_KEY = "no-key"
_ERROR_TYPES = {
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


class OpenAIChatBackend:
    """Sends each request to `base_url` as a chat completion, as `upstream_model` if given.

    Without `upstream_model` the request's own `model` is sent, for servers that host
    models under Anthropic's names. Retries are batchgate's, so the SDK makes none.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        upstream_model: str | None = None,
        timeout: float = 600.0,
    ) -> None:
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or _PLACEHOLDER_API_KEY,
            timeout=timeout,
            max_retries=0,
        )
        self._upstream_model = upstream_model
        self._timeout = timeout

    async def create_message(self, params: dict[str, Any]) -> dict[str, Any]:
        request = chat_request_from_params(params, self._upstream_model or params["model"])
        extra_body = {field: request.pop(field) for field in _NON_OPENAI_FIELDS if field in request}
        try:
            completion = await self._client.chat.completions.create(
                **request, extra_body=extra_body or None
            )
        except openai.APIStatusError as failure:
            raise _status_error(failure) from failure
        except openai.APITimeoutError as failure:
            raise RequestError(
                "api_error",
                f"the upstream server did not answer within {self._timeout:g} s",
                transient=True,
            ) from failure
        except openai.APIConnectionError as failure:
            # The SDK's own message is a bare "Connection error."; the cause says which.
            reason = failure.__cause__ or failure
            raise RequestError(
                "api_error", f"the upstream server cannot be reached: {reason}", transient=True
            ) from failure
        except openai.APIError as failure:
            raise RequestError(
                "api_error", f"the upstream server sent an unreadable answer: {failure}"
            ) from failure
        return message_from_chat_completion(completion.model_dump(), params)


def _status_error(failure: openai.APIStatusError) -> RequestError:
    status = failure.status_code
    transient = status in (408, 429) or status >= 500
    error_type = _ERROR_TYPES.get(status, "api_error" if transient else "invalid_request_error")
    return RequestError(
        error_type,
        f"the upstream server answered HTTP {status}: {_error_detail(failure)}",
        transient=transient,
        retry_after=_retry_after(failure.response.headers) if transient else None,
    )


def _error_detail(failure: openai.APIStatusError) -> str:
    """The upstream's own words: OpenAI's `error.message`, FastAPI's `detail`, or the body."""
    body = failure.body
    if isinstance(body, dict):
        for key in ("message", "detail"):
            if body.get(key):
                return str(body[key])
    if body:
        return str(body)
    return failure.response.text or failure.response.reason_phrase


def _retry_after(headers: Mapping[str, str]) -> float | None:
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
