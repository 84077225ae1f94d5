"""A backend that runs a GGUF model in-process, on CPU, with llama-cpp-python.

llama-cpp-python takes and returns OpenAI-style chat completions, so requests go through the
same translation as the OpenAI-compatible backend.
"""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from batchgate.backends.translate_openai import (
    chat_request_from_params,
    message_from_chat_completion,
)
from batchgate.errors import RequestError

if TYPE_CHECKING:
    from llama_cpp import Llama

# `create_chat_completion` accepts neither. `user` only labels the caller for a hosted
# service's abuse monitoring. The GGUF's own chat template, the handler used here, returns a
# tool call only when one tool is forced, so `parallel_tool_calls: false` holds already.
_FIELDS_WITHOUT_LOCAL_MEANING = ("user", "parallel_tool_calls")


class LocalGGUFBackend:
    """Answers with the GGUF model at `model_path`, loaded on first use.

    Every backend naming the same file and settings shares one loaded model, whichever
    batches its requests come from.
    """

    def __init__(self, model_path: str, n_ctx: int = 2048, n_threads: int | None = None) -> None:
        self._model = _shared_model(str(Path(model_path).resolve()), n_ctx, n_threads)

    async def create_message(self, params: dict[str, Any]) -> dict[str, Any]:
        request = chat_request_from_params(params, params["model"])
        for field in _FIELDS_WITHOUT_LOCAL_MEANING:
            request.pop(field, None)
        completion = await self._model.create_chat_completion(request)
        return message_from_chat_completion(completion, params)


class _SharedModel:
    """One GGUF model and the single thread that loads it and runs every call on it.

    llama.cpp contexts are not thread-safe, so one worker thread serializes the calls. Calls
    waiting their turn queue in that worker's executor rather than each blocking a thread of
    anyio's shared pool, which the storage layer needs too.
    """

    def __init__(self, model_path: str, n_ctx: int, n_threads: int | None) -> None:
        self._model_path = model_path
        self._n_ctx = n_ctx
        self._n_threads = n_threads
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batchgate-gguf")
        self._llama: Llama | None = None

    async def create_chat_completion(self, request: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.wrap_future(self._worker.submit(self._complete, request))

    def _complete(self, request: dict[str, Any]) -> dict[str, Any]:
        if self._llama is None:
            self._llama = self._load()
        try:
            completion = self._llama.create_chat_completion(**request)
        except ValueError as refused:
            # llama-cpp-python's way to refuse an input: a prompt longer than the context
            # window, or a conversation the model's chat template rejects.
            raise RequestError(
                "invalid_request_error", f"the local model cannot take this request: {refused}"
            ) from None
        # Not streamed, so this is one response rather than an iterator of chunks.
        return cast(dict[str, Any], completion)

    def _load(self) -> "Llama":
        try:
            from llama_cpp import Llama
        except ImportError:
            raise RequestError(
                "api_error", "the local backend needs: pip install 'batchgate[local]'"
            ) from None
        try:
            return Llama(
                model_path=self._model_path,
                n_ctx=self._n_ctx,
                n_threads=self._n_threads,
                verbose=False,
            )
        except ValueError as unloadable:
            raise RequestError(
                "api_error", f"the local model cannot be loaded: {unloadable}"
            ) from None


_shared_models: dict[tuple[str, int, int | None], _SharedModel] = {}
_shared_models_lock = threading.Lock()


def _shared_model(model_path: str, n_ctx: int, n_threads: int | None) -> _SharedModel:
    with _shared_models_lock:
        key = (model_path, n_ctx, n_threads)
        model = _shared_models.get(key)
        if model is None:
            model = _shared_models[key] = _SharedModel(model_path, n_ctx, n_threads)
        return model
