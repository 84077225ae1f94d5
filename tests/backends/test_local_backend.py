"""LocalGGUFBackend with SmolLM2-135M running in-process."""

import asyncio
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from anthropic.types import Message

from batchgate.backends.local_gguf import LocalGGUFBackend
from batchgate.errors import RequestError
from batchgate.lifecycle.params import validate_params

pytestmark = pytest.mark.slow

llama_cpp = pytest.importorskip(
    "llama_cpp", reason="llama-cpp-python is not installed (batchgate[local])"
)


@pytest.fixture
def model_path(smollm2_path: str) -> str:
    return smollm2_path


def params(prompt: str, **fields: Any) -> dict[str, Any]:
    request = {
        "model": "smollm2-local",
        "max_tokens": 32,
        "messages": [{"role": "user", "content": prompt}],
        **fields,
    }
    return validate_params(request)


def text_of(message: dict[str, Any]) -> str:
    return "".join(block["text"] for block in message["content"] if block["type"] == "text")


def test_model_answers_with_real_text(model_path: str) -> None:
    backend = LocalGGUFBackend(model_path)
    message = asyncio.run(
        backend.create_message(
            params("What is the capital of France?", system="Answer briefly.", temperature=0)
        )
    )
    Message.model_validate(message)
    assert message["model"] == "smollm2-local"
    assert text_of(message).strip()
    assert message["stop_reason"] in ("end_turn", "max_tokens")
    assert message["usage"]["input_tokens"] > 0
    assert 0 < message["usage"]["output_tokens"] <= 32


def test_max_tokens_cuts_the_reply(model_path: str) -> None:
    message = asyncio.run(
        LocalGGUFBackend(model_path).create_message(params("Tell me a long story.", max_tokens=3))
    )
    assert message["stop_reason"] == "max_tokens"
    assert message["usage"]["output_tokens"] == 3


class CountingLlamaClass:
    """Stands in for `llama_cpp.Llama`: counts the models loaded and the calls that overlap."""

    def __init__(self) -> None:
        self.loads = 0
        self.most_running = 0
        self._running = 0
        self._real_llama_class = llama_cpp.Llama
        self._lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.loads += 1
        llama = self._real_llama_class(*args, **kwargs)
        complete = llama.create_chat_completion

        def counted_complete(*call_args: Any, **call_kwargs: Any) -> Any:
            with self._lock:
                self._running += 1
                self.most_running = max(self.most_running, self._running)
            try:
                return complete(*call_args, **call_kwargs)
            finally:
                with self._lock:
                    self._running -= 1

        llama.create_chat_completion = counted_complete
        return llama


def test_concurrent_calls_from_two_backends_share_one_model_one_at_a_time(
    model_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    llama_class = CountingLlamaClass()
    monkeypatch.setattr(llama_cpp, "Llama", llama_class)
    # A context size no other test uses, so that this test loads its own shared model.
    backends = [LocalGGUFBackend(model_path, n_ctx=1536) for _ in range(2)]

    async def ask_both() -> list[dict[str, Any]]:
        return list(
            await asyncio.gather(
                backends[0].create_message(params("Name a color.")),
                backends[1].create_message(params("Name an animal.")),
            )
        )

    messages = asyncio.run(ask_both())
    assert all(text_of(message).strip() for message in messages)
    assert llama_class.loads == 1
    assert llama_class.most_running == 1


def test_prompt_beyond_the_context_window_is_an_invalid_request(model_path: str) -> None:
    backend = LocalGGUFBackend(model_path, n_ctx=512)
    with pytest.raises(RequestError) as raised:
        asyncio.run(backend.create_message(params("word " * 1000)))
    assert raised.value.error_type == "invalid_request_error"
    assert "exceed context window" in raised.value.message


def test_missing_model_file_is_an_api_error(tmp_path: Path) -> None:
    backend = LocalGGUFBackend(str(tmp_path / "absent.gguf"))
    with pytest.raises(RequestError) as raised:
        asyncio.run(backend.create_message(params("Hi")))
    assert raised.value.error_type == "api_error"
    assert "cannot be loaded" in raised.value.message


def test_missing_llama_cpp_names_the_extra_to_install(
    model_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    backend = LocalGGUFBackend(model_path, n_ctx=256)
    with pytest.raises(RequestError) as raised:
        asyncio.run(backend.create_message(params("Hi")))
    assert raised.value.error_type == "api_error"
    assert raised.value.message == "the local backend needs: pip install 'batchgate[local]'"
