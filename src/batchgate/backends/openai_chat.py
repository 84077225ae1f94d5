"""A backend that answers through any OpenAI-compatible `/v1/chat/completions` server."""

import json
from collections.abc import Awaitable
from typing import Any, TypeVar

import openai

from batchgate.backends import upstream_errors
from batchgate.backends.translate_openai import (
    chat_request_from_params,
    message_from_chat_completion,
)
from batchgate.redaction import Secrets

# Servers read it from the body, but the SDK's `create` has no such argument.
_NON_OPENAI_FIELDS = ("top_k",)
# The SDK insists on a key; local servers take none, and falling back to OPENAI_API_KEY
# would hand the user's OpenAI key to whatever server base_url names.
_PLACEHOLDER_API_KEY = "no-key"
Answer = TypeVar("Answer")


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
        self._secrets = Secrets([api_key])
        self._upstream_model = upstream_model
        self._timeout = timeout

    async def create_message(self, params: dict[str, Any]) -> dict[str, Any]:
        request = chat_request_from_params(params, self._upstream_model or params["model"])
        extra_body = {field: request.pop(field) for field in _NON_OPENAI_FIELDS if field in request}
        completion = await self._answer(
            self._client.chat.completions.create(**request, extra_body=extra_body or None)
        )
        return message_from_chat_completion(completion.model_dump(), params)

    async def create_chat_completion(self, body: dict[str, Any]) -> dict[str, Any]:
        """An OpenAI batch's chat request, sent as it is (only the model renamed, if the
        route says so): tools, response_format, logprobs and n all reach the server."""
        return await self._pass_through("/chat/completions", body)

    async def create_embedding(self, body: dict[str, Any]) -> dict[str, Any]:
        """An OpenAI batch's embeddings request, sent as it is."""
        return await self._pass_through("/embeddings", body)

    async def _pass_through(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if self._upstream_model is not None:
            body = {**body, "model": self._upstream_model}
        answer: object = await self._answer(self._client.post(path, body=body, cast_to=object))
        if not isinstance(answer, dict):
            raise upstream_errors.unreadable_answer(
                ValueError(f"the upstream answered {path} with {type(answer).__name__}"),
                self._secrets,
            )
        return answer

    async def _answer(self, call: Awaitable[Answer]) -> Answer:
        """The SDK call's answer; its failures as RequestError."""
        try:
            return await call
        except openai.APIStatusError as failure:
            raise upstream_errors.status_error(
                failure.status_code,
                failure.response.headers,
                failure.body,
                failure.response.text or failure.response.reason_phrase,
                self._secrets,
            ) from failure
        except openai.APITimeoutError as failure:
            raise upstream_errors.timeout_error(self._timeout) from failure
        except openai.APIConnectionError as failure:
            raise upstream_errors.connection_error(failure, self._secrets) from failure
        except openai.APIError as failure:
            raise upstream_errors.unreadable_answer(failure, self._secrets) from failure
        except json.JSONDecodeError as failure:
            # The SDK lets a 200 whose body is not JSON through as the decoder's own error.
            raise upstream_errors.unreadable_answer(failure, self._secrets) from failure
