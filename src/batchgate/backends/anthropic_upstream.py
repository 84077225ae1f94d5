"""A backend that sends each request to a server speaking Anthropic's `/v1/messages`.

Anthropic itself, and vLLM, llama.cpp's server, Ollama or LiteLLM, which serve the same
endpoint. The upstream's Message is the result as it arrived, whatever it contains, except that
its usage says the batch tier.
"""

from typing import Any

import anthropic
import httpx2
import orjson

from batchgate.backends import upstream_errors
from batchgate.backends.upstream_http import DEFAULT_POOL_SIZE, pooled_client
from batchgate.redaction import Secrets

# The SDK insists on a key; local servers take none, and falling back to ANTHROPIC_API_KEY
# would hand the user's Anthropic key to whatever server base_url names.
_PLACEHOLDER_API_KEY = "no-key"


class AnthropicUpstreamBackend:
    """Calls `base_url` through the official SDK, as `upstream_model` if given, on a pool of
    `connections` (backends/upstream_http.py).

    Retries are batchgate's, so the SDK makes none.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        upstream_model: str | None = None,
        timeout: float = 600.0,
        connections: int = DEFAULT_POOL_SIZE,
    ) -> None:
        self._client = anthropic.AsyncAnthropic(
            base_url=base_url,
            api_key=api_key or _PLACEHOLDER_API_KEY,
            max_retries=0,
            timeout=timeout,
            http_client=pooled_client(anthropic.DefaultAioHttpClient, connections),
        )
        self._secrets = Secrets([api_key])
        self._upstream_model = upstream_model
        self._timeout = timeout

    async def aclose(self) -> None:
        await self._client.close()

    async def create_message(self, params: dict[str, Any]) -> dict[str, Any]:
        body = params if self._upstream_model is None else {**params, "model": self._upstream_model}
        try:
            # The SDK's own POST, as `messages.create` sends it, without what would otherwise
            # be a fifth of the CPU a request takes here: `create` opens a tracing span, checks
            # its arguments, builds the body anew and wraps the raw answer. The params, already
            # valid, go as they are, every field included, whether or not this SDK version
            # knows it (newer ones drop `temperature`); and with the timeout given, no refusal
            # of a large `max_tokens`.
            response = await self._client.post(
                "/v1/messages",
                body=body,
                cast_to=httpx2.Response,
                options={"timeout": self._timeout},
            )
            answer = await response.aread()
        except anthropic.APIStatusError as failure:
            raise upstream_errors.status_error(
                failure.status_code,
                failure.response.headers,
                failure.body,
                failure.response.text or failure.response.reason_phrase,
                self._secrets,
                upstream_error_type=_error_type_named_in(failure.body),
            ) from failure
        except anthropic.APITimeoutError as failure:
            raise upstream_errors.timeout_error(self._timeout) from failure
        except anthropic.APIConnectionError as failure:
            raise upstream_errors.connection_error(failure, self._secrets) from failure
        except anthropic.APIError as failure:
            raise upstream_errors.unreadable_answer(failure, self._secrets) from failure
        return self._message(answer)

    def _message(self, answer: bytes) -> dict[str, Any]:
        try:
            message = orjson.loads(answer)
        except orjson.JSONDecodeError:
            message = None
        if not isinstance(message, dict) or not isinstance(message.get("usage"), dict):
            raise upstream_errors.not_a_message(answer, self._secrets)
        message["usage"]["service_tier"] = "batch"
        return message


def _error_type_named_in(body: object) -> str | None:
    """`error.type` of Anthropic's error body: `{"type": "error", "error": {"type", "message"}}`."""
    error = body.get("error") if isinstance(body, dict) else None
    error_type = error.get("type") if isinstance(error, dict) else None
    return error_type if isinstance(error_type, str) else None
