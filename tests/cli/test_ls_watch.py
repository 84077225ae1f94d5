"""`batchgate ls --watch` keeps the list up to date from the workspace's event stream: a batch
created and ended while it watches shows up, ended, long before its polling interval; of
Message Batches, and of OpenAI batches with `--format openai`. Ctrl-C ends it with exit 0."""

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from conftest import KEY, Server, simple_request, wait_until_ended
from openai_batches.conftest import chat_line, create_chat_batch, openai_client, wait_until_done


def lines_of(process: subprocess.Popen[str]) -> "queue.Queue[str]":
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


def wait_for_line(lines: "queue.Queue[str]", wanted: Callable[[str], bool], within: float) -> str:
    deadline = time.monotonic() + within
    while True:
        line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        if wanted(line):
            return line


def test_ls_watch_follows_the_event_stream(start_server: Callable[..., Server]) -> None:
    server = start_server()
    client = server.client()
    first = client.messages.batches.create(requests=[simple_request("r0")])  # type: ignore[list-item]
    wait_until_ended(client, first.id)
    environment = {
        **os.environ,
        "ANTHROPIC_BASE_URL": server.base_url,
        "ANTHROPIC_API_KEY": KEY,
        "COLUMNS": "200",
    }
    # Polling every minute: only the stream can show a change within the test's seconds.
    process = subprocess.Popen(
        [sys.executable, "-m", "batchgate", "ls", "--watch", "--interval", "60"],
        env=environment,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        lines = lines_of(process)
        wait_for_line(lines, lambda line: first.id in line, within=30)

        second = client.messages.batches.create(
            requests=[simple_request(f"r{i}") for i in range(3)]  # type: ignore[misc]
        )
        wait_until_ended(client, second.id)
        ended = wait_for_line(lines, lambda line: second.id in line and "ended" in line, within=5)
        assert ended.split()[:2] == [second.id, "ended"]
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0


def test_ls_format_openai_watch_follows_the_event_stream(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    server = start_server()
    client = openai_client(server)
    first = create_chat_batch(client, tmp_path / "first.jsonl", [chat_line("r0", "Hi")])
    wait_until_done(client, first.id)
    environment = {**os.environ, "COLUMNS": "200"}
    command = ["ls", "--format", "openai", "--watch", "--interval", "60"]
    process = subprocess.Popen(
        [sys.executable, "-m", "batchgate", *command, "--base-url", server.base_url],
        env={**environment, "OPENAI_API_KEY": KEY},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        lines = lines_of(process)
        wait_for_line(lines, lambda line: first.id in line, within=30)

        requests = [chat_line(f"r{i}", f"Question {i}") for i in range(3)]
        second = create_chat_batch(client, tmp_path / "second.jsonl", requests)
        wait_until_done(client, second.id)
        shown = wait_for_line(
            lines, lambda line: second.id in line and "completed" in line, within=5
        )
        assert shown.split()[:2] == [second.id, "completed"]
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
