"""Reading Server-Sent Events with httpx, as a client of the event streams would."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from conftest import KEY


@dataclass(frozen=True)
class Message:
    id: int
    event: str
    data: dict[str, Any]


def messages(response: httpx.Response) -> Iterator[Message]:
    """The stream's events, in order; keep-alive comments and the retry hint are skipped."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line == "":
            if "data" in fields:
                yield Message(int(fields["id"]), fields["event"], orjson.loads(fields["data"]))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


def stream(
    base_url: str,
    path: str,
    last_event_id: int | None = None,
    key: str = KEY,
    read_timeout: float = 30,
) -> httpx.Response:
    """An open stream (a context manager): the caller reads `messages` of it."""
    headers = {"x-api-key": key}
    if last_event_id is not None:
        headers["last-event-id"] = str(last_event_id)
    client = httpx.Client(base_url=base_url, timeout=httpx.Timeout(30, read=read_timeout))
    return client.send(client.build_request("GET", path, headers=headers), stream=True)


def read_all(
    base_url: str, path: str, last_event_id: int | None = None, key: str = KEY
) -> list[Message]:
    response = stream(base_url, path, last_event_id, key)
    try:
        assert response.status_code == 200, response.read()
        return list(messages(response))
    finally:
        response.close()
