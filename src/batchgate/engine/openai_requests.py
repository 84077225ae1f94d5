"""One request of an OpenAI batch on its route: what to call, and the endpoint's answer.

A chat request goes as it is to a backend that speaks chat completions (OpenAI-compatible
upstreams), so nothing is lost; any other backend (the simulator, an Anthropic upstream, a local
model) gets it as Messages params (backends/translate_openai.py) and its Message back as a
`chat.completion`. An embeddings request needs a backend that embeds. What a backend cannot do
is a RequestError, which ends that request alone, on the error file.
"""

from dataclasses import dataclass
from typing import Any

import msgspec

from batchgate.backends.base import Backend
from batchgate.backends.simulator import Simulator
from batchgate.backends.translate_openai import (
    chat_completion_from_message,
    params_from_chat_request,
)
from batchgate.errors import RequestError
from batchgate.lifecycle.params import validate_params
from batchgate.lifecycle.usage import NO_USAGE, ChatTokens

CHAT_COMPLETIONS = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
ENDPOINTS = (CHAT_COMPLETIONS, EMBEDDINGS)


@dataclass(frozen=True, slots=True)
class OpenAIRequest:
    endpoint: str
    body: dict[str, Any]

    @classmethod
    def decode(cls, endpoint: str, raw: bytes | memoryview | msgspec.Raw) -> "OpenAIRequest":
        body = msgspec.json.decode(raw)
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise RequestError("invalid_request_error", "model: Field required")
        return cls(endpoint, body)

    @property
    def model(self) -> str:
        model: str = self.body["model"]
        return model

    def answer_at_once(self, simulator: Simulator) -> dict[str, Any]:
        """The answer of a route answered in line (the zero-latency simulator)."""
        return chat_completion_from_message(simulator.reply(self._messages_params()))

    async def invoke(self, backend: Backend) -> dict[str, Any]:
        """The endpoint's answer (a `chat.completion`, a list of embeddings) from `backend`."""
        if self.endpoint == EMBEDDINGS:
            embed = getattr(backend, "create_embedding", None)
            if embed is None:
                raise RequestError(
                    "invalid_request_error",
                    f"model {self.model!r}: its route's backend cannot compute embeddings"
                    " (only OpenAI-compatible upstreams can)",
                )
            embedding: dict[str, Any] = await embed(self.body)
            return embedding
        chat = getattr(backend, "create_chat_completion", None)
        if chat is not None:
            completion: dict[str, Any] = await chat(self.body)
            return completion
        return chat_completion_from_message(await backend.create_message(self._messages_params()))

    def _messages_params(self) -> dict[str, Any]:
        if self.endpoint != CHAT_COMPLETIONS:
            raise RequestError(
                "invalid_request_error",
                f"model {self.model!r}: its route's backend cannot compute embeddings"
                " (only OpenAI-compatible upstreams can)",
            )
        return validate_params(params_from_chat_request(self.body))


def answer_tokens(answer: dict[str, Any], model: str) -> ChatTokens:
    """The answer's model, prompt and completion tokens, which the batch's usage sums."""
    usage = answer.get("usage") or NO_USAGE
    return model, usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0
