"""Logs: a JSON line per HTTP request and per batch change, with ids but never prompts or keys."""

import io
import json
import logging
from collections.abc import Callable, Iterator

import httpx
import pytest

from batchgate.observability.logs import configure_logging
from conftest import KEY, Server, simple_request, wait_until_ended


def test_a_server_logs_requests_and_batch_changes_as_json_lines(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(api_keys=KEY, simulator_latency_ms="500")
    client = server.client()
    batch = client.messages.batches.create(
        requests=[simple_request(f"r{i}", "a secret prompt") for i in range(5)]  # type: ignore[misc]
    )
    client.messages.batches.cancel(batch.id)
    wait_until_ended(client, batch.id)
    httpx.get(f"{server.base_url}/readyz")
    server.stop()

    text = server.log.read_text()
    assert "a secret prompt" not in text and KEY not in text and "color_message" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    posts = [line for line in lines if line.get("method") == "POST"]
    assert [(line["path"], line["status"]) for line in posts] == [
        ("/v1/messages/batches", 200),
        (f"/v1/messages/batches/{batch.id}/cancel", 200),
    ]
    assert all(line["request_id"].startswith("req_") for line in posts)
    assert all(line["duration_ms"] >= 0 for line in posts)
    changes = [(line["message"], line["batch_id"]) for line in lines if "batch_id" in line]
    assert changes == [
        ("batch created", batch.id),
        ("batch canceling", batch.id),
        ("batch ended", batch.id),
    ]
    assert not any(line.get("path") == "/readyz" for line in lines), "probes only at debug"
    shutdown = [line for line in lines if line["logger"] == "batchgate.engine"]
    assert shutdown and shutdown[-1]["level"] == "info"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


@pytest.mark.usefixtures("restore_root_logger")
def test_a_terminal_gets_readable_lines_with_the_fields_after_the_message() -> None:
    terminal = Terminal()
    configure_logging("info", terminal)
    logging.getLogger("batchgate.api").info("batch created", extra={"batch_id": "msgbatch_1"})
    line = terminal.getvalue().strip()
    assert line.endswith("INFO batchgate.api: batch created batch_id=msgbatch_1")
    assert not line.startswith("{")
