"""An upload is stored piece by piece as it arrives: a multi-piece file comes back whole, and an
upload that ends midway (the client gone, or the file over the limit) leaves nothing stored. On
either store: each commits and deletes the pieces its own way."""

import http.client
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path

from conftest import KEY, Server
from openai_batches.conftest import chat_line, database_rows, openai_client

BOUNDARY = "streaming-test-boundary"
# Past one 4 MB piece, and short of two: the upload stores its first piece before the end.
FILE_BYTES = 6_000_000


def _file(size: int) -> bytes:
    lines, total, number = [], 0, 0
    while total < size:
        line = json.dumps(chat_line(f"r{number}", "x" * 1000)).encode() + b"\n"
        lines.append(line)
        total += len(line)
        number += 1
    return b"".join(lines)


def _form_head() -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="in.jsonl"\r\n'
        "Content-Type: application/jsonl\r\n\r\n"
    ).encode()


def _stored_pieces(server: Server) -> int:
    [(count,)] = database_rows(server, "SELECT count(*) FROM file_pieces")
    return int(count)  # type: ignore[call-overload]


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _request_head(server: Server, headers: str) -> bytes:
    return (
        f"POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {KEY}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n{headers}\r\n"
    ).encode()


def test_a_file_of_several_pieces_comes_back_whole(
    tmp_path: Path, start_on_store: Callable[..., Server]
) -> None:
    client = openai_client(start_on_store())
    content = _file(9_000_000)
    path = tmp_path / "in.jsonl"
    path.write_bytes(content)
    with path.open("rb") as upload:
        file = client.files.create(file=upload, purpose="batch")
    assert file.bytes == len(content)
    assert client.files.content(file.id).read() == content
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.request_counts is not None
    assert batch.request_counts.total == content.count(b"\n")


def test_an_upload_the_client_abandons_midway_leaves_nothing_stored(
    start_on_store: Callable[..., Server],
) -> None:
    server = start_on_store()
    content = _file(FILE_BYTES)
    body = _form_head() + content + f"\r\n--{BOUNDARY}--\r\n".encode()
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        connection.sendall(_request_head(server, f"Content-Length: {len(body)}\r\n"))
        connection.sendall(body[: len(body) - 1_000_000])
        # The first piece is stored while the rest has yet to arrive; no file is seen.
        _wait_for(lambda: _stored_pieces(server) > 0)
        assert list(openai_client(server).files.list()) == []

    _wait_for(lambda: _stored_pieces(server) == 0)
    assert list(openai_client(server).files.list()) == []


def test_a_file_found_over_the_limit_as_it_arrives_is_refused_and_nothing_kept(
    start_on_store: Callable[..., Server],
) -> None:
    limit = 5_000_000
    server = start_on_store(openai_max_file_bytes=str(limit))
    content = _form_head() + _file(FILE_BYTES)
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        # Sent in chunks of unknown total length: only the bytes themselves tell the size.
        connection.sendall(_request_head(server, "Transfer-Encoding: chunked\r\n"))
        connection.sendall(f"{len(content):x}\r\n".encode() + content + b"\r\n")
        answer = http.client.HTTPResponse(connection)
        answer.begin()
        assert answer.status == 413
        error = json.loads(answer.read())["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert f"limit of {limit} bytes" in error["message"]
    assert _stored_pieces(server) == 0
    assert list(openai_client(server).files.list()) == []


def test_a_body_that_ends_inside_its_file_part_is_refused_and_nothing_kept(
    start_on_store: Callable[..., Server],
) -> None:
    server = start_on_store()
    body = _form_head() + _file(FILE_BYTES)  # no closing boundary: the file part never ends
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        connection.sendall(_request_head(server, f"Content-Length: {len(body)}\r\n") + body)
        answer = http.client.HTTPResponse(connection)
        answer.begin()
        assert answer.status == 400
        error = json.loads(answer.read())["error"]
    assert error["param"] == "file"
    assert _stored_pieces(server) == 0
    assert list(openai_client(server).files.list()) == []
