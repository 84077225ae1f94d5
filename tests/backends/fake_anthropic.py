"""A fake Anthropic `/v1/messages` upstream: strict about requests, unreliable on purpose.

An ASGI app on uvicorn, in a thread, on a free loopback port. Every request body is checked
against the official SDK's own request types; a request that fails the check is answered 400
and recorded in `invalid`, so a test can assert there were none. Answers are valid Messages
that echo the prompt, unless a fault is injected: at `fault_rate`, one of `faults`. By default
those are the transient ones: 429 (with `retry-after-ms`, with `retry-after` or with neither),
529, 500, a reset connection or an answer slower than the client's timeout. `ALL_FAULTS` adds
a 503 from a proxy, a body cut short of its content-length, a body that stalls halfway for longer
than the client's timeout, and a 200 whose body is not JSON. Some prompts ask for an answer of
their own (see the markers below); with `concurrency_limit`, requests beyond it get a 429, as a
busy server answers.
"""

import asyncio
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, get_type_hints

import orjson
import pydantic
import uvicorn
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming

from conftest import KEY

FAULTS = ("429", "429-retry-after-ms", "429-retry-after", "529", "500", "reset", "timeout")
ALL_FAULTS = (*FAULTS, "503", "truncated", "stall", "invalid-json")
# Prompts containing these get: a 400; an error that quotes the API key (a 400, or a 529 that
# is retried); a Message that does; a 200 that is not JSON.
ALWAYS_BAD = "BAD-REQUEST"
ECHO_KEY_IN_ERROR = "ECHO-KEY-IN-ERROR"
ECHO_KEY_WHEN_OVERLOADED = "ECHO-KEY-WHEN-OVERLOADED"
ECHO_KEY_IN_ANSWER = "ECHO-KEY-IN-ANSWER"
GARBLED = "GARBLED"
_REQUEST_TYPE = pydantic.TypeAdapter(MessageCreateParamsNonStreaming)
# The API still takes these; SDK 2.x's request types dropped them.
_FIELDS_BEYOND_THE_SDK_TYPES = {"temperature", "top_p", "top_k"}
_KNOWN_FIELDS = set(get_type_hints(MessageCreateParamsNonStreaming)) | _FIELDS_BEYOND_THE_SDK_TYPES

Scope = dict[str, Any]


@dataclass
class Arrival:
    """A request as it arrived: its prompt, key, and how many were running, it included."""

    prompt: str
    key: str | None
    in_flight: int
    answer: str = "pending"
    params: object = None


@dataclass
class FakeAnthropic:
    latency: float = 0.0
    fault_rate: float = 0.0
    faults: tuple[str, ...] = FAULTS
    # How long a `timeout` fault keeps the client waiting: longer than its timeout.
    timeout_delay: float = 2.0
    concurrency_limit: int | None = None
    # How long a 429 for going over `concurrency_limit` takes.
    refusal_latency: float = 0.0
    api_key: str = KEY
    seed: int = 0
    arrivals: list[Arrival] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    in_flight: int = 0

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        config = uvicorn.Config(
            self._app, interface="asgi3", log_level="critical", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def start(self) -> "FakeAnthropic":
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake upstream did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def answers(self) -> Counter[str]:
        return Counter(arrival.answer for arrival in self.arrivals)

    def attempts(self, prompt: str) -> list[str]:
        return [arrival.answer for arrival in self.arrivals if arrival.prompt == prompt]

    async def _app(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                event = (await receive())["type"]
                await send({"type": f"{event}.complete"})
                if event == "lifespan.shutdown":
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.in_flight += 1
        try:
            await self._answer(scope, body, send)
        finally:
            self.in_flight -= 1

    async def _answer(self, scope: Scope, body: bytes, send: Any) -> None:
        headers = {name.decode().lower(): value.decode() for name, value in scope["headers"]}
        if scope["method"] != "POST" or scope["path"] != self.path:
            await self._send_error(send, 404, "not_found_error", f"no route {scope['path']}")
            return
        key = _presented_key(headers)
        if key != self.api_key:
            await self._send_error(send, 401, "authentication_error", "invalid API key")
            return
        try:
            params = orjson.loads(body)
            problem = self._problem_with(params, headers)
        except orjson.JSONDecodeError as error:
            params, problem = {}, f"body is not JSON: {error}"
        arrival = Arrival(_prompt_of(params), key, self.in_flight, params=params)
        self.arrivals.append(arrival)
        if problem:
            self.invalid.append(problem)
            arrival.answer = "invalid"
            await self._send_error(send, 400, "invalid_request_error", problem)
            return
        if ALWAYS_BAD in arrival.prompt:
            arrival.answer = "400"
            await self._send_error(
                send, 400, "invalid_request_error", "this prompt is always refused"
            )
            return
        if ECHO_KEY_IN_ERROR in arrival.prompt:
            arrival.answer = "400"
            await self._send_error(send, 400, "invalid_request_error", f"not for key {key}")
            return
        if ECHO_KEY_WHEN_OVERLOADED in arrival.prompt:
            arrival.answer = "529"
            await self._send_error(send, 529, "overloaded_error", f"overloaded, key {key}")
            return
        if ECHO_KEY_IN_ANSWER in arrival.prompt:
            arrival.answer = "200"
            await _send(send, 200, self._answer_to(params, f"your key is {key}"))
            return
        if GARBLED in arrival.prompt:
            arrival.answer = "200"
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"<html>not a message</html>"})
            return
        if self.concurrency_limit is not None and self.in_flight > self.concurrency_limit:
            arrival.answer = "429"
            await asyncio.sleep(self.refusal_latency)
            await self._send_error(send, 429, "rate_limit_error", "too many concurrent requests")
            return
        fault = (
            self._random.choice(self.faults) if self._random.random() < self.fault_rate else None
        )
        arrival.answer = fault or "200"
        await asyncio.sleep(self.timeout_delay if fault == "timeout" else self.latency)
        if fault is None or fault == "timeout":
            await _send(send, 200, self._answer_to(params, arrival.prompt))
        elif fault in ("truncated", "stall"):
            payload = orjson.dumps(self._answer_to(params, arrival.prompt))
            length = str(len(payload)).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", length),
                    ],
                }
            )
            half = len(payload) // 2
            await send({"type": "http.response.body", "body": payload[:half], "more_body": True})
            if fault == "truncated":
                raise ConnectionResetError("fake upstream: injected truncated body")
            await asyncio.sleep(self.timeout_delay)
            await send({"type": "http.response.body", "body": payload[half:]})
        elif fault == "invalid-json":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"id": "msg_01", "type": "mess'})
        elif fault == "503":
            # As a load balancer in front of the API answers: not Anthropic's envelope.
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [(b"content-type", b"text/plain")],
                }
            )
            await send({"type": "http.response.body", "body": b"no healthy upstream"})
        elif fault == "reset":
            # The status line goes out, then the connection drops: uvicorn closes it when the
            # app fails mid-answer.
            await send({"type": "http.response.start", "status": 200, "headers": []})
            raise ConnectionResetError("fake upstream: injected reset")
        elif fault.startswith("429"):
            extra = {
                "429-retry-after-ms": [(b"retry-after-ms", b"50")],
                "429-retry-after": [(b"retry-after", b"0.05")],
            }.get(fault, [])
            await self._send_error(send, 429, "rate_limit_error", "slow down", extra)
        elif fault == "529":
            await self._send_error(send, 529, "overloaded_error", "Overloaded")
        else:
            await self._send_error(send, 500, "api_error", "Internal server error")

    # What the upstream's API looks like; a subclass speaks another (fake_openai.py).
    path = "/v1/messages"

    def _problem_with(self, params: object, headers: dict[str, str]) -> str | None:
        return _problem_with(params, headers)

    def _answer_to(self, params: dict[str, Any], prompt: str) -> dict[str, Any]:
        return _message(params, prompt)

    def _error_body(self, error_type: str, message: str) -> dict[str, Any]:
        return {"type": "error", "error": {"type": error_type, "message": message}}

    async def _send_error(
        self,
        send: Any,
        status: int,
        error_type: str,
        message: str,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        await _send(send, status, self._error_body(error_type, message), headers)


def _presented_key(headers: dict[str, str]) -> str | None:
    """SDK 0.x/1.x send `x-api-key`, 2.x `Authorization: Bearer`."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return headers.get("x-api-key") or (token if scheme.lower() == "bearer" else None)


def _problem_with(params: object, headers: dict[str, str]) -> str | None:
    """What is wrong with a request, judged by the official SDK's types; None if nothing."""
    if "anthropic-version" not in headers:
        return "missing anthropic-version header"
    if not isinstance(params, dict):
        return "body is not an object"
    unknown = set(params) - _KNOWN_FIELDS
    if unknown:
        return f"unknown fields {sorted(unknown)}"
    try:
        _exhaust(_REQUEST_TYPE.validate_python(params))
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        return f"{error.error_count()} errors, first at {first['loc']}: {first['msg']}"
    return None


def _exhaust(value: object) -> None:
    """Walks a validated value: the SDK's Iterable fields only validate when iterated."""
    if isinstance(value, dict):
        for item in value.values():
            _exhaust(item)
    elif isinstance(value, Iterable) and not isinstance(value, str | bytes):
        for item in value:
            _exhaust(item)


def _prompt_of(params: object) -> str:
    try:
        content = params["messages"][-1]["content"]  # type: ignore[index]
    except (KeyError, IndexError, TypeError):
        return ""
    if isinstance(content, str):
        return content
    return " ".join(
        block["text"] for block in content if isinstance(block, dict) and block["type"] == "text"
    )


def _message(params: dict[str, Any], prompt: str) -> dict[str, Any]:
    return {
        "id": f"msg_fake{random.getrandbits(64):016x}",
        "type": "message",
        "role": "assistant",
        "model": params["model"],
        "content": [{"type": "text", "text": f"echo: {prompt}"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 12,
            "output_tokens": 7,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "standard",
        },
    }


async def _send(
    send: Any, status: int, body: object, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": payload})
