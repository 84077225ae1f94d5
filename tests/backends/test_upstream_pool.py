"""Each upstream route sends on a pool of its own, as wide as the route: never more connections
than its `max_concurrency` (capped by the engine's), each kept alive for the next request."""

import asyncio
from typing import Any

import orjson
import pytest

from batchgate.backends.factory import open_backend
from batchgate.config.routes import RouteConfig
from batchgate.config.settings import Settings
from batchgate.lifecycle.params import validate_params

MESSAGE = orjson.dumps(
    {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "content": [{"type": "text", "text": "Paris."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 2},
    }
)
COMPLETION = orjson.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "claude-haiku-4-5",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Paris."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }
)


class CountingUpstream:
    """Answers every POST after `delay` seconds, counting connections: opened, and most open."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.opened = 0
        self.open = 0
        self.most_open = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.opened += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = next(
                    int(line.split(b":")[1])
                    for line in head.lower().split(b"\r\n")
                    if line.startswith(b"content-length:")
                )
                await reader.readexactly(length)
                await asyncio.sleep(self.delay)
                body = COMPLETION if b"/chat/completions" in head.split(b"\r\n")[0] else MESSAGE
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%s" % (len(body), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()


def params() -> dict[str, Any]:
    return validate_params(
        {
            "model": "claude-haiku-4-5",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "Capital of France?"}],
        }
    )


async def send_rounds(
    backend_name: str, route_width: int | None, engine_width: int, requests: int
) -> CountingUpstream:
    upstream = CountingUpstream(delay=0.05)
    server = await asyncio.start_server(upstream.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    suffix = "/v1" if backend_name == "openai" else ""
    route = RouteConfig(
        model="*",
        backend=backend_name,
        base_url=f"http://127.0.0.1:{port}{suffix}",
        max_concurrency=route_width,
    )
    backend = open_backend(route, Settings(max_concurrency=engine_width))
    async with server:
        # Two rounds: the second must find the first's connections still open.
        for _ in range(2):
            messages = await asyncio.gather(
                *(backend.create_message(params()) for _ in range(requests))
            )
            assert all(message["content"][0]["text"] == "Paris." for message in messages)
        await backend.aclose()
        # The upstream sees the pool's connections end (the engine's stop does this).
        for _ in range(100):
            if not upstream.open:
                break
            await asyncio.sleep(0.01)
    return upstream


@pytest.mark.parametrize("backend_name", ["anthropic", "openai"])
def test_a_route_opens_at_most_its_width_and_keeps_them_alive(backend_name: str) -> None:
    upstream = asyncio.run(send_rounds(backend_name, route_width=3, engine_width=256, requests=9))
    assert upstream.most_open == 3
    assert upstream.opened == 3
    assert upstream.open == 0  # closed by aclose


def test_the_engine_width_caps_a_wider_route() -> None:
    upstream = asyncio.run(send_rounds("anthropic", route_width=1024, engine_width=2, requests=6))
    assert upstream.most_open == 2


def test_a_route_without_its_own_width_takes_the_engines() -> None:
    upstream = asyncio.run(send_rounds("anthropic", route_width=None, engine_width=4, requests=8))
    assert upstream.most_open == 4
