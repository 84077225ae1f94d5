"""A webhook receiver for the tests: an HTTP server on a free port that records every call, and
answers as the test says (fail every other call, 410, redirect), or is down for a while."""

import http.server
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from standardwebhooks import Webhook

from conftest import free_port


@dataclass(frozen=True)
class Call:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int

    @property
    def payload(self) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.body)
        return parsed


@dataclass
class Receiver:
    # The status to answer the n-th call (from 0) with.
    answer: Callable[[int], int] = lambda _: 204
    # Seconds to wait before answering the n-th call.
    stall: Callable[[int], float] = lambda _: 0.0
    port: int = field(default_factory=free_port)
    calls: list[Call] = field(default_factory=list)
    _server: http.server.ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> "Receiver":
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                with receiver._lock:
                    number = len(receiver.calls)
                    status = receiver.answer(number)
                    receiver.calls.append(
                        Call(self.path, dict(self.headers.items()), body, time.time(), status)
                    )
                time.sleep(receiver.stall(number))
                self.send_response(status)
                if status in (301, 302):
                    self.send_header("location", receiver.url + "/moved")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def delivered(self) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if 200 <= call.status < 300]

    def wait_for(self, done: Callable[[list[Call]], bool], timeout: float = 30) -> list[Call]:
        deadline = time.monotonic() + timeout
        while not done(self.delivered()):
            assert time.monotonic() < deadline, f"still waiting; calls: {self.calls}"
            time.sleep(0.05)
        return self.delivered()


def verified(call: Call, secret: str) -> dict[str, Any]:
    """The payload, once its signature verifies with `secret` (raises otherwise)."""
    payload: dict[str, Any] = Webhook(secret).verify(call.body, call.headers)
    return payload
