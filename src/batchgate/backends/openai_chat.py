"""A backend that answers through any OpenAI-compatible `/v1/chat/completions` server."""

from typing import Any

import httpx2
import openai
import orjson

from batchgate.backends import upstream_errors
from batchgate.backends.translate_openai import (
    chat_request_from_params,
    message_from_chat_completion,
)
from batchgate.backends.upstream_http import DEFAULT_POOL_SIZE, failed_to_connect, pooled_client
from batchgate.redaction import Secrets

# The SDK insists on a key; local servers take none, and falling back to OPENAI_API_KEY
# would hand the user's OpenAI key to whatever server base_url names.
_PLACEHOLDER_API_KEY = "no-key"


class OpenAIChatBackend:
    """Sends each request to `base_url` as a chat completion, as `upstream_model` if given, on
    a pool of `connections` (backends/upstream_http.py).

    Without `upstream_model` the request's own `model` is sent, for servers that host
    models under Anthropic's names. Retries are batchgate's, so the SDK makes none.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        upstream_model: str | None = None,
        timeout: float = 600.0,
        connections: int = DEFAULT_POOL_SIZE,
    ) -> None:
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or _PLACEHOLDER_API_KEY,
            timeout=timeout,
            max_retries=0,
            http_client=pooled_client(openai.DefaultAioHttpClient, connections),
        )
        self._secrets = Secrets([api_key])
        self._upstream_model = upstream_model
        self._timeout = timeout

    async def aclose(self) -> None:
        await self._client.close()

    async def create_message(self, params: dict[str, Any]) -> dict[str, Any]:
        request = chat_request_from_params(params, self._upstream_model or params["model"])
        completion = await self._post("/chat/completions", request)
        if not isinstance(completion, dict):
            raise upstream_errors.not_a_message(orjson.dumps(completion), self._secrets)
        return message_from_chat_completion(completion, params)

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
        answer = await self._post(path, body)
        if not isinstance(answer, dict):
            raise upstream_errors.unreadable_answer(
                ValueError(f"the upstream answered {path} with {type(answer).__name__}"),
                self._secrets,
            )
        return answer

    async def _post(self, path: str, body: dict[str, Any]) -> object:
        """The decoded answer to a POST; its failures as RequestError.

        The SDK's own POST, as its `create` sends it, without the costs that would otherwise be
        most of the CPU a request takes here: `create` walks the body against its types and the
        answer is parsed into a model, only to be dumped back. The body goes as it is: servers
        read `top_k`, which `create` has no argument for.
        """
        try:
            response = await self._client.post(
                path, body=body, cast_to=httpx2.Response, options={"timeout": self._timeout}
            )
            answer: object = orjson.loads(await response.aread())
            return answer
        except openai.APIStatusError as failure:
            raise upstream_errors.status_error(
                failure.status_code,
                failure.response.headers,
                failure.body,
                failure.response.text or failure.response.reason_phrase,
                self._secrets,
            ) from failure
        except openai.APITimeoutError as failure:
            if failed_to_connect(failure):
                raise upstream_errors.connection_error(failure, self._secrets) from failure
            raise upstream_errors.timeout_error(self._timeout) from failure
        except openai.APIConnectionError as failure:
            raise upstream_errors.connection_error(failure, self._secrets) from failure
        except (openai.APIError, orjson.JSONDecodeError) as failure:
            raise upstream_errors.unreadable_answer(failure, self._secrets) from failure
