"""OpenAIChatBackend end to end: a real llama.cpp server, and stub servers for its failures."""

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from anthropic.types import Message

from backends.conftest import LLAMA_MODEL_ALIAS as MODEL_ALIAS
from batchgate.backends.openai_chat import OpenAIChatBackend
from batchgate.errors import RequestError
from batchgate.lifecycle.params import validate_params
from conftest import free_port


def params(prompt: str = "What is the capital of France?", **fields: Any) -> dict[str, Any]:
    request = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": prompt}],
        **fields,
    }
    return validate_params(request)


def reply(backend: OpenAIChatBackend, request: dict[str, Any]) -> dict[str, Any]:
    message = asyncio.run(backend.create_message(request))
    Message.model_validate(message)
    return message


def failure(backend: OpenAIChatBackend, request: dict[str, Any] | None = None) -> RequestError:
    with pytest.raises(RequestError) as raised:
        asyncio.run(backend.create_message(request or params()))
    return raised.value


# A real llama.cpp server


@pytest.mark.slow
def test_simple_prompt_gets_real_text(llama_server: str) -> None:
    backend = OpenAIChatBackend(llama_server, upstream_model=MODEL_ALIAS)
    message = reply(backend, params(temperature=0))
    assert message["id"].startswith("msg_")
    assert message["model"] == "claude-sonnet-4-5"
    [block] = message["content"]
    assert block["type"] == "text"
    assert block["text"].strip()
    assert message["stop_reason"] in ("end_turn", "max_tokens")
    assert message["usage"]["input_tokens"] > 0
    assert message["usage"]["output_tokens"] > 0


@pytest.mark.slow
def test_max_tokens_cuts_the_reply(llama_server: str) -> None:
    backend = OpenAIChatBackend(llama_server, upstream_model=MODEL_ALIAS)
    message = reply(backend, params("Write a long story about a dragon.", max_tokens=5))
    assert message["stop_reason"] == "max_tokens"
    assert message["usage"]["output_tokens"] == 5


@pytest.mark.slow
def test_prompt_longer_than_the_context_is_a_permanent_invalid_request(llama_server: str) -> None:
    backend = OpenAIChatBackend(llama_server, upstream_model=MODEL_ALIAS)
    error = failure(backend, params("word " * 3000, max_tokens=5))
    assert error.error_type == "invalid_request_error"
    assert not error.transient
    assert "HTTP 400" in error.message
    assert "maximum context length" in error.message


# Stub upstreams: how HTTP failures become RequestErrors


class StubUpstream:
    """A server on a free port that answers every request with one canned response."""

    def __init__(
        self,
        status: int,
        body: object,
        headers: dict[str, str] | None = None,
        delay_s: float = 0.0,
    ) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                lowercase_headers = {name.lower(): value for name, value in self.headers.items()}
                upstream.requests.append((lowercase_headers, json.loads(self.rfile.read(length))))
                time.sleep(delay_s)
                payload = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


StartStub = Callable[..., StubUpstream]


@pytest.fixture
def stub() -> Iterator[StartStub]:
    started: list[StubUpstream] = []

    def start(*args: Any, **kwargs: Any) -> StubUpstream:
        upstream = StubUpstream(*args, **kwargs)
        started.append(upstream)
        return upstream

    yield start
    for upstream in started:
        upstream.close()


def openai_error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": None}}


COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 0,
    "model": "upstream-model",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Paris."},
            "finish_reason": "stop",
            "stop_reason": "END",
        }
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
}


def test_request_goes_as_a_chat_completion_without_leaking_the_openai_key(
    stub: StartStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-users-own-openai-key")
    upstream = stub(200, COMPLETION)
    backend = OpenAIChatBackend(upstream.base_url, upstream_model="upstream-model")
    message = reply(backend, params(top_k=7, stop_sequences=["END"]))
    assert message["content"] == [{"type": "text", "text": "Paris."}]
    assert message["stop_reason"] == "stop_sequence"
    assert message["stop_sequence"] == "END"
    [(headers, body)] = upstream.requests
    assert "sk-users-own-openai-key" not in headers["authorization"]
    assert body["model"] == "upstream-model"
    assert body["top_k"] == 7
    assert body["max_tokens"] == 64
    assert body["stop"] == ["END"]


def test_api_key_and_the_requested_model_are_sent(stub: StartStub) -> None:
    upstream = stub(200, COMPLETION)
    reply(OpenAIChatBackend(upstream.base_url, api_key="sk-upstream"), params())
    [(headers, body)] = upstream.requests
    assert headers["authorization"] == "Bearer sk-upstream"
    assert body["model"] == "claude-sonnet-4-5"


@pytest.mark.parametrize(
    ("status", "headers", "error_type", "retry_after"),
    [
        (429, {"retry-after-ms": "1500"}, "rate_limit_error", 1.5),
        (429, {"retry-after": "7"}, "rate_limit_error", 7.0),
        (503, {"retry-after-ms": "250", "retry-after": "9"}, "overloaded_error", 0.25),
        (529, {}, "overloaded_error", None),
        (500, {"retry-after": "soon"}, "api_error", None),
        (408, {}, "api_error", None),
    ],
)
def test_transient_statuses_are_retryable(
    stub: StartStub,
    status: int,
    headers: dict[str, str],
    error_type: str,
    retry_after: float | None,
) -> None:
    upstream = stub(status, openai_error("busy"), headers)
    error = failure(OpenAIChatBackend(upstream.base_url))
    assert (error.error_type, error.transient, error.retry_after) == (
        error_type,
        True,
        retry_after,
    )
    assert error.message == f"the upstream server answered HTTP {status}: busy"
    assert len(upstream.requests) == 1, "the SDK must not retry on its own"


def test_retry_after_as_an_http_date(stub: StartStub) -> None:
    in_a_minute = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 60))
    upstream = stub(429, openai_error("slow down"), {"retry-after": in_a_minute})
    retry_after = failure(OpenAIChatBackend(upstream.base_url)).retry_after
    assert retry_after is not None
    assert 55 <= retry_after <= 60


@pytest.mark.parametrize(
    ("status", "body", "error_type", "detail"),
    [
        (400, openai_error("bad stop"), "invalid_request_error", "bad stop"),
        (401, openai_error("wrong key"), "authentication_error", "wrong key"),
        (403, openai_error("forbidden"), "permission_error", "forbidden"),
        (404, openai_error("no such model"), "not_found_error", "no such model"),
        (413, openai_error("too big"), "request_too_large", "too big"),
        (422, {"detail": [{"msg": "field required"}]}, "invalid_request_error", "field required"),
        (418, "teapot", "invalid_request_error", "teapot"),
    ],
)
def test_client_errors_are_permanent(
    stub: StartStub, status: int, body: object, error_type: str, detail: str
) -> None:
    upstream = stub(status, body)
    error = failure(OpenAIChatBackend(upstream.base_url))
    assert (error.error_type, error.transient, error.retry_after) == (error_type, False, None)
    assert error.message.startswith(f"the upstream server answered HTTP {status}: ")
    assert detail in error.message


def test_unreachable_server_is_transient() -> None:
    error = failure(OpenAIChatBackend(f"http://127.0.0.1:{free_port()}/v1"))
    assert (error.error_type, error.transient) == ("api_error", True)
    assert "cannot be reached" in error.message


def test_timeout_is_transient(stub: StartStub) -> None:
    upstream = stub(200, COMPLETION, delay_s=1.0)
    error = failure(OpenAIChatBackend(upstream.base_url, timeout=0.2))
    assert (error.error_type, error.transient) == ("api_error", True)
    assert "did not answer within 0.2 s" in error.message


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (["a", "list"], "unreadable answer"),
        ("a string", "unreadable answer"),
        ({"id": "chatcmpl-1", "object": "chat.completion"}, "contains no choices"),
    ],
)
def test_a_200_that_is_no_chat_completion_is_a_permanent_api_error(
    stub: StartStub, body: object, detail: str
) -> None:
    error = failure(OpenAIChatBackend(stub(200, body).base_url))
    assert (error.error_type, error.transient) == ("api_error", False)
    assert detail in error.message


def test_untranslatable_request_never_reaches_the_server(stub: StartStub) -> None:
    upstream = stub(200, COMPLETION)
    error = failure(OpenAIChatBackend(upstream.base_url), params(thinking={"type": "enabled"}))
    assert error.error_type == "invalid_request_error"
    assert upstream.requests == []
