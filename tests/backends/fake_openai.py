"""A fake OpenAI `/v1/chat/completions` upstream, with the faults of the fake Anthropic one.

Requests are checked against the official OpenAI SDK's request types; answers are chat
completions that echo the prompt, and errors come in OpenAI's envelope.
"""

import random
from dataclasses import dataclass
from typing import Any

import pydantic
from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming

from backends.fake_anthropic import FakeAnthropic

_REQUEST_TYPE = pydantic.TypeAdapter(CompletionCreateParamsNonStreaming)


@dataclass
class FakeOpenAI(FakeAnthropic):
    path = "/v1/chat/completions"

    def _problem_with(self, params: object, headers: dict[str, str]) -> str | None:
        try:
            _REQUEST_TYPE.validate_python(params)
        except pydantic.ValidationError as error:
            first = error.errors()[0]
            return f"{error.error_count()} errors, first at {first['loc']}: {first['msg']}"
        return None

    def _answer_to(self, params: dict[str, Any], prompt: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{random.getrandbits(64):016x}",
            "object": "chat.completion",
            "created": 1_764_000_000,
            "model": params["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": f"echo: {prompt}"},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
        }

    def _error_body(self, error_type: str, message: str) -> dict[str, Any]:
        return {"error": {"message": message, "type": error_type, "param": None, "code": None}}
