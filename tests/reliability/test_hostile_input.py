"""Hostile creates: each gets a clear 4xx in Anthropic's envelope, stores nothing, costs little.

Against a real `batchgate serve`, over raw HTTP (and raw sockets where httpx would not misbehave
the way an attacker does). The server's memory is watched with psutil while 257 MiB arrive.
"""

import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import psutil
import pytest

from conftest import KEY, Server, simple_request, wait_until_ended

MiB = 2**20
CAP = 256 * MiB
BODY_TIMEOUT = 2.0
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"}
CREATE = "/v1/messages/batches"


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(
        tmp_path_factory.mktemp("hostile"), api_keys=KEY, body_timeout_seconds=str(BODY_TIMEOUT)
    ).start()
    yield server
    server.stop()


def stored_ids(server: Server) -> list[str]:
    page = httpx.get(f"{server.base_url}{CREATE}?limit=1000", headers=HEADERS).json()
    return [batch["id"] for batch in page["data"]]


def assert_refused(response: httpx.Response, status: int, error_type: str, fragment: str) -> None:
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["type"] == "error" and body["request_id"] == response.headers["request-id"]
    assert body["error"]["type"] == error_type
    assert fragment in body["error"]["message"], body["error"]["message"]
    assert len(body["error"]["message"]) < 500, "a message never quotes a whole hostile input"


def request_bytes(custom_id: bytes = b'"a"', params: bytes | None = None) -> bytes:
    params = params or orjson.dumps(simple_request("a")["params"])
    return b'{"requests":[{"custom_id":' + custom_id + b',"params":' + params + b"}]}"


def many(count: int) -> bytes:
    return orjson.dumps({"requests": [simple_request(f"r{i}") for i in range(count)]})


def nested(depth: int) -> bytes:
    return request_bytes(params=b'{"model":"m","x":' + b"[" * depth + b"]" * depth + b"}")


def text_params(text: bytes) -> bytes:
    return (
        b'{"model":"claude-sonnet-4-5","max_tokens":16,'
        b'"messages":[{"role":"user","content":"' + text + b'"}]}'
    )


BAD_BODIES = {
    "malformed JSON": (b'{"requests": [', "not valid JSON"),
    "not an object": (b"[1, 2]", "body"),
    "requests not a list": (b'{"requests": "nope"}', "requests"),
    "custom_id a number": (request_bytes(custom_id=b"7"), "requests.0.custom_id"),
    "params a list": (request_bytes(params=b"[]"), "requests.0.params: Input should be an object"),
    "no requests": (b'{"requests": []}', "at least 1 item"),
    "100,001 requests": (many(100_001), "at most 100000 items"),
    "duplicate custom_id": (
        orjson.dumps({"requests": [simple_request("same"), simple_request("same")]}),
        "requests.1.custom_id: 'same' is used by an earlier request",
    ),
    "custom_id of 65 characters": (request_bytes(custom_id=b'"' + b"x" * 65 + b'"'), "1 to 64"),
    "custom_id of 10 MB": (request_bytes(custom_id=b'"' + b"x" * 10_000_000 + b'"'), "1 to 64"),
    "unknown key of 10 MB": (
        b'{"requests": [], "' + b"k" * 10_000_000 + b'": 1}',
        "unknown field",
    ),
    "100,000 nested arrays in params": (nested(100_000), "nested too deeply"),
    "2,000 nested arrays in params": (nested(2_000), "nested too deeply"),
    "invalid UTF-8 in custom_id": (request_bytes(custom_id=b'"a\xff"'), "not valid UTF-8"),
    "invalid UTF-8 in params": (
        request_bytes(params=text_params(b"caf\xc3\x28")),
        "requests.0.params: not valid JSON",
    ),
    "lone surrogate in params": (request_bytes(params=text_params(b"\\ud800")), "not valid JSON"),
    "number out of range in params": (
        request_bytes(params=b'{"model":"m","max_tokens":1e999}'),
        "requests.0.params: not valid JSON",
    ),
    "raw NUL in custom_id": (request_bytes(custom_id=b'"a\x00b"'), "not valid JSON"),
    "raw NUL in params": (
        request_bytes(params=text_params(b"a\x00b")),
        "not valid JSON",
    ),
    "escaped NUL in custom_id": (request_bytes(custom_id=b'"a\\u0000b"'), "1 to 64"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_a_hostile_create_is_400_and_stores_nothing(hostile_server: Server, case: str) -> None:
    body, fragment = BAD_BODIES[case]
    before = stored_ids(hostile_server)
    response = httpx.post(
        f"{hostile_server.base_url}{CREATE}", content=body, headers=HEADERS, timeout=60
    )
    assert_refused(response, 400, "invalid_request_error", fragment)
    assert stored_ids(hostile_server) == before


def test_an_escaped_nul_in_message_text_is_legal_json_and_runs(hostile_server: Server) -> None:
    # Anthropic parses the body as JSON, where "\u0000" is a character like any other; the
    # request is accepted and runs, as any text would.
    before = stored_ids(hostile_server)
    response = httpx.post(
        f"{hostile_server.base_url}{CREATE}",
        content=request_bytes(custom_id=b'"nul"', params=text_params(b"a\\u0000b")),
        headers=HEADERS,
    )
    assert response.status_code == 200, response.text
    assert stored_ids(hostile_server) == [response.json()["id"], *before]
    client = hostile_server.client()
    wait_until_ended(client, response.json()["id"])
    [result] = list(client.messages.batches.results(response.json()["id"]))
    assert result.custom_id == "nul" and result.result.type == "succeeded"


class PeakRss:
    """Samples a process's resident memory every few milliseconds, in a thread."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self.baseline = self._process.memory_info().rss
        self.peak = self.baseline
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.005):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


def test_257_mib_declared_in_content_length_is_refused_before_it_is_read(
    hostile_server: Server,
) -> None:
    assert hostile_server.process is not None
    before = stored_ids(hostile_server)
    with (
        PeakRss(hostile_server.process.pid) as rss,
        socket.create_connection(("127.0.0.1", hostile_server.port), timeout=10) as sock,
    ):
        started = time.monotonic()
        sock.sendall(raw_head(f"Content-Length: {257 * MiB}") + b'{"requests": [')
        status_line, body = read_response(sock)
        elapsed = time.monotonic() - started
        assert sock.recv(1) == b"", "the server closed the connection"
    assert status_line.startswith(b"HTTP/1.1 413"), status_line
    error = orjson.loads(body)["error"]
    assert error["type"] == "request_too_large" and "maximum size" in error["message"]
    assert elapsed < 2, "answered without waiting for the body"
    assert rss.growth < 20 * MiB
    assert stored_ids(hostile_server) == before
    print(f"257 MiB declared: 413 in {elapsed * 1000:.0f} ms, RSS +{rss.growth / MiB:.1f} MiB")


def test_257_mib_chunked_is_refused_once_past_the_cap_and_memory_stays_bounded(
    start_server: Callable[..., Server],
) -> None:
    # The whole 256 MiB must arrive before the cap is passed: not within hostile_server's 2 s on
    # a busy machine.
    hostile_server = start_server(api_keys=KEY, body_timeout_seconds="60")
    assert hostile_server.process is not None
    piece = b" " * MiB  # whitespace: the body would be valid JSON but for its size

    def pieces() -> Iterator[bytes]:
        yield b'{"requests":'
        for _ in range(257):
            yield piece

    before = stored_ids(hostile_server)
    with PeakRss(hostile_server.process.pid) as rss:
        started = time.monotonic()
        response = httpx.post(
            f"{hostile_server.base_url}{CREATE}", content=pieces(), headers=HEADERS, timeout=60
        )
        elapsed = time.monotonic() - started
    assert "content-length" not in response.request.headers
    assert_refused(response, 413, "request_too_large", "maximum size")
    # The cap can only be known to be passed once that much is held; never much more.
    assert rss.growth < CAP + 64 * MiB, f"RSS grew {rss.growth / MiB:.0f} MiB"
    assert stored_ids(hostile_server) == before
    after = psutil.Process(hostile_server.process.pid).memory_info().rss
    print(
        f"257 MiB chunked: 413 in {elapsed:.2f} s, peak RSS +{rss.growth / MiB:.0f} MiB,"
        f" {after / MiB:.0f} MiB after"
    )


def raw_head(framing: str) -> bytes:
    return (
        f"POST {CREATE} HTTP/1.1\r\nHost: batchgate\r\nx-api-key: {KEY}\r\n"
        f"Content-Type: application/json\r\n{framing}\r\n\r\n"
    ).encode()


def read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """The status line and body of one response with a content-length."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head.split(b"\r\n")[0], body


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_trickled_body_is_cut_off_with_408_and_its_connection_freed(
    hostile_server: Server, framing: str
) -> None:
    assert hostile_server.process is not None
    server_process = psutil.Process(hostile_server.process.pid)
    head = "Content-Length: 100000" if framing == "content-length" else "Transfer-Encoding: chunked"
    tick = b" " if framing == "content-length" else b"1\r\n \r\n"
    before = stored_ids(hostile_server)
    with socket.create_connection(("127.0.0.1", hostile_server.port)) as sock:
        port = sock.getsockname()[1]
        sock.sendall(raw_head(head) + (b"10\r\n" if framing == "chunked" else b"") + b"{")
        if framing == "chunked":
            sock.sendall(b'"requests":   [\r\n')
        started = time.monotonic()
        sock.settimeout(0.1)
        received, closed = b"", False
        while not closed and time.monotonic() - started < BODY_TIMEOUT + 10:
            try:
                sock.sendall(tick)  # a byte every 0.1 s: slow, but never idle
                chunk = sock.recv(65536)
                received += chunk
                closed = not chunk
            except TimeoutError:
                pass
            except OSError:
                closed = True
        elapsed = time.monotonic() - started
    assert received.startswith(b"HTTP/1.1 408"), received[:200]
    error = orjson.loads(received.partition(b"\r\n\r\n")[2])["error"]
    assert (
        error["type"] == "timeout_error" and "did not arrive within 2 seconds" in error["message"]
    )
    assert closed, "the server closed the connection"
    assert BODY_TIMEOUT <= elapsed < BODY_TIMEOUT + 2
    still_open = [
        connection
        for connection in server_process.net_connections("tcp")
        if connection.raddr and connection.raddr.port == port
    ]
    assert still_open == [] or all(c.status != psutil.CONN_ESTABLISHED for c in still_open)
    assert stored_ids(hostile_server) == before
    print(f"slow body ({framing}): 408 after {elapsed:.2f} s, connection closed")


def test_many_trickled_bodies_at_once_neither_starve_others_nor_outlive_the_timeout(
    hostile_server: Server, long_run: bool
) -> None:
    assert hostile_server.process is not None
    count = 1000 if long_run else 100
    sockets = [socket.create_connection(("127.0.0.1", hostile_server.port)) for _ in range(count)]
    try:
        started = time.monotonic()
        for sock in sockets:
            sock.sendall(raw_head("Content-Length: 100000") + b"{")
            sock.setblocking(False)
        client = hostile_server.client()
        batch = client.messages.batches.create(requests=[simple_request("beside")])  # type: ignore[list-item]
        served_in = time.monotonic() - started
        assert wait_until_ended(client, batch.id).request_counts.succeeded == 1

        open_sockets, received = set(sockets), {sock: b"" for sock in sockets}
        while open_sockets and time.monotonic() - started < BODY_TIMEOUT + 15:
            for sock in list(open_sockets):
                try:
                    sock.send(b" ")
                    answer = sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    answer = b""
                if answer:
                    received[sock] += answer
                else:
                    open_sockets.discard(sock)
            time.sleep(0.1)
        elapsed = time.monotonic() - started
    finally:
        for sock in sockets:
            sock.close()
    assert open_sockets == set(), f"{len(open_sockets)} connections still open"
    # A client still sending when the server closes gets a reset, which can overtake the 408.
    answers = Counter(answer[:12] for answer in received.values() if answer)
    assert set(answers) == {b"HTTP/1.1 408"}, answers
    assert served_in < BODY_TIMEOUT, "a normal create was served while they trickled"
    print(
        f"{count} trickled bodies: a create beside them in {served_in * 1000:.0f} ms; all"
        f" closed within {elapsed:.1f} s, {answers[b'HTTP/1.1 408']} of them seeing the 408"
    )


def test_the_server_still_serves_after_the_hostile_corpus(hostile_server: Server) -> None:
    client = hostile_server.client()
    batch = client.messages.batches.create(requests=[simple_request("after")])  # type: ignore[list-item]
    assert wait_until_ended(client, batch.id).request_counts.succeeded == 1
    assert "unhandled error" not in Path(hostile_server.log).read_text()
