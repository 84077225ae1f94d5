"""A backend that runs a GGUF model in-process, on CPU, with llama-cpp-python.

llama-cpp-python takes and returns OpenAI-style chat completions, so requests go through the
same translation as the OpenAI-compatible backend. It computes embeddings too, for OpenAI
batches of `/v1/embeddings` requests, with a second instance of the model loaded for that.
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
# What an embeddings request may hold: llama.cpp returns floats at the model's own size.
_EMBEDDING_FIELDS = frozenset({"model", "input", "encoding_format", "user"})


class LocalGGUFBackend:
    """Answers with the GGUF model at `model_path`, loaded on first use.

    Every backend naming the same file and settings shares one loaded model, whichever
    batches its requests come from.
    """

    def __init__(self, model_path: str, n_ctx: int = 2048, n_threads: int | None = None) -> None:
        resolved = str(Path(model_path).resolve())
        self._model = _shared_model(resolved, n_ctx, n_threads, embedding=False)
        # Loaded on its first embeddings request only: llama.cpp embeds with a context made
        # for it.
        self._embedder = _shared_model(resolved, n_ctx, n_threads, embedding=True)

    async def aclose(self) -> None:
        """It holds no connections; its model stays loaded for the process's other routes."""

    async def create_message(self, params: dict[str, Any]) -> dict[str, Any]:
        request = chat_request_from_params(params, params["model"])
        for field in _FIELDS_WITHOUT_LOCAL_MEANING:
            request.pop(field, None)
        completion = await self._model.create_chat_completion(request)
        return message_from_chat_completion(completion, params)

    async def create_embedding(self, body: dict[str, Any]) -> dict[str, Any]:
        """An OpenAI batch's embeddings request: the OpenAI-shaped list of embeddings."""
        for field in body:
            if field not in _EMBEDDING_FIELDS:
                raise RequestError(
                    "invalid_request_error", f"{field}: the local model has no such option"
                )
        if body.get("encoding_format", "float") != "float":
            raise RequestError(
                "invalid_request_error", "encoding_format: the local model returns floats only"
            )
        text = body.get("input")
        if not isinstance(text, str) and not (
            isinstance(text, list) and text and all(isinstance(item, str) for item in text)
        ):
            raise RequestError(
                "invalid_request_error", "input: a string or a list of strings is required"
            )
        return await self._embedder.create_embedding(text, body["model"])


class _SharedModel:
    """One GGUF model and the single thread that loads it and runs every call on it.

    llama.cpp contexts are not thread-safe, so one worker thread serializes the calls. Calls
    waiting their turn queue in that worker's executor rather than each blocking a thread of
    anyio's shared pool, which the storage layer needs too.
    """

    def __init__(self, model_path: str, n_ctx: int, n_threads: int | None, embedding: bool) -> None:
        self._model_path = model_path
        self._embedding = embedding
        self._n_ctx = n_ctx
        self._n_threads = n_threads
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batchgate-gguf")
        self._llama: Llama | None = None

    async def create_chat_completion(self, request: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.wrap_future(self._worker.submit(self._complete, request))

    async def create_embedding(self, text: str | list[str], model: str) -> dict[str, Any]:
        return await asyncio.wrap_future(self._worker.submit(self._embed, text, model))

    def _embed(self, text: str | list[str], model: str) -> dict[str, Any]:
        if self._llama is None:
            self._llama = self._load()
        try:
            embedded = self._llama.create_embedding(input=text, model=model)
        except ValueError as refused:
            raise RequestError(
                "invalid_request_error", f"the local model cannot embed this input: {refused}"
            ) from None
        return cast(dict[str, Any], embedded)

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
            from llama_cpp import LLAMA_POOLING_TYPE_MEAN, LLAMA_POOLING_TYPE_UNSPECIFIED, Llama
        except ImportError:
            raise RequestError(
                "api_error", "the local backend needs: pip install 'batchgate[local]'"
            ) from None
        try:
            return Llama(
                model_path=self._model_path,
                n_ctx=self._n_ctx,
                n_threads=self._n_threads,
                embedding=self._embedding,
                # One vector per input, the mean of its tokens', for a chat model too (which
                # names no pooling of its own, and would give one vector per token).
                pooling_type=(
                    LLAMA_POOLING_TYPE_MEAN if self._embedding else LLAMA_POOLING_TYPE_UNSPECIFIED
                ),
                verbose=False,
            )
        except ValueError as unloadable:
            raise RequestError(
                "api_error", f"the local model cannot be loaded: {unloadable}"
            ) from None


_shared_models: dict[tuple[str, int, int | None, bool], _SharedModel] = {}
_shared_models_lock = threading.Lock()


def _shared_model(
    model_path: str, n_ctx: int, n_threads: int | None, embedding: bool
) -> _SharedModel:
    with _shared_models_lock:
        key = (model_path, n_ctx, n_threads, embedding)
        model = _shared_models.get(key)
        if model is None:
            model = _shared_models[key] = _SharedModel(model_path, n_ctx, n_threads, embedding)
        return model
