"""Logs: a JSON line per HTTP request and per batch change, with ids but never prompts or keys;
other libraries' lines from warning up, unless at debug."""

import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from backends.fake_anthropic import FakeAnthropic
from backends.fake_openai import FakeOpenAI
from batchgate.observability.logs import configure_logging
from batchgate.redaction import Secrets
from conftest import KEY, Server, simple_request, wait_until_ended


def test_a_server_logs_requests_and_batch_changes_as_json_lines(
    start_server: Callable[..., Server],
) -> None:
    # One request at a time: in progress for 2.5 s, the cancel lands on a busy machine too.
    server = start_server(api_keys=KEY, simulator_latency_ms="500", max_concurrency="1")
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


@pytest.fixture
def flaky_upstreams() -> Iterator[tuple[FakeAnthropic, FakeAnthropic]]:
    """A fake Anthropic and a fake OpenAI upstream that answer 429 to one call in three."""
    fakes = tuple(
        speaking(fault_rate=0.3, faults=("429-retry-after-ms",), api_key="no-key", seed=5).start()
        for speaking in (FakeAnthropic, FakeOpenAI)
    )
    yield fakes
    for fake in fakes:
        fake.stop()


@pytest.mark.parametrize("level", ["info", "debug"])
def test_upstream_calls_get_a_line_each_only_at_debug(
    flaky_upstreams: tuple[FakeAnthropic, FakeAnthropic], tmp_path: Path, level: str
) -> None:
    anthropic_fake, openai_fake = flaky_upstreams
    config = tmp_path / "routes.toml"
    config.write_text(
        f"""
[[routes]]
model = "claude-*"
backend = "anthropic"
base_url = "{anthropic_fake.base_url}"
backoff_seconds = 0.01

[[routes]]
model = "*"
backend = "openai"
base_url = "{openai_fake.base_url}/v1"
backoff_seconds = 0.01
"""
    )
    server = Server(tmp_path)
    server.arguments = ["--config", str(config), "--log-level", level]
    server.start()
    try:
        client = server.client()
        requests = [simple_request(f"claude-{i}") for i in range(50)]
        requests += [simple_request(f"gpt-{i}", model="gpt-4o") for i in range(50)]
        batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
        assert wait_until_ended(client, batch.id).request_counts.succeeded == 100
    finally:
        server.stop()
    calls = len(anthropic_fake.arrivals) + len(openai_fake.arrivals)
    assert calls > 110, "some calls were refused and retried"

    lines = [json.loads(line) for line in server.log.read_text().splitlines()]
    http_requests = [line for line in lines if line["message"].startswith("HTTP Request: POST")]
    troubles = [line for line in lines if line.get("route") and line["level"] == "warning"]
    if level == "debug":
        assert len(http_requests) == calls
    else:
        own = ("batchgate", "uvicorn.")
        others = [line for line in lines if not line["logger"].startswith(own)]
        assert [line for line in others if line["level"] in ("debug", "info")] == []
        assert http_requests == []
        # Each route's 429s: one line, not one per call or per retry.
        assert sorted(line["route"] for line in troubles) == ["*", "claude-*"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root, own = logging.getLogger(), logging.getLogger("batchgate")
    handlers, level, own_level = root.handlers[:], root.level, own.level
    yield
    root.handlers[:], root.level, own.level = handlers, level, own_level


@pytest.mark.usefixtures("restore_root_logger")
def test_a_terminal_gets_readable_lines_with_the_fields_after_the_message() -> None:
    terminal = Terminal()
    configure_logging("info", terminal)
    logging.getLogger("batchgate.api").info("batch created", extra={"batch_id": "msgbatch_1"})
    line = terminal.getvalue().strip()
    assert line.endswith("INFO batchgate.api: batch created batch_id=msgbatch_1")
    assert not line.startswith("{")


@pytest.mark.usefixtures("restore_root_logger")
def test_keys_that_can_be_secrets_are_redacted_from_every_line_tracebacks_included() -> None:
    key = "sk-ant-api03-a-real-looking-key-0123456789"
    output = io.StringIO()
    configure_logging("info", output, Secrets([key, "EMPTY"]))
    log = logging.getLogger("batchgate.engine")
    log.warning("the upstream said: bad key %s", key, extra={"detail": f"key={key}"})
    try:
        raise ValueError(f"no such key {key}")
    except ValueError:
        log.exception("backend failed unexpectedly; the route's placeholder key is EMPTY")
    text = output.getvalue()
    assert key not in text
    first, second = (json.loads(line) for line in text.splitlines())
    assert first["message"] == "the upstream said: bad key [redacted]"
    assert first["detail"] == "key=[redacted]"
    assert second["message"].endswith("placeholder key is EMPTY"), "placeholders stay readable"
    assert second["exception"].endswith("ValueError: no such key [redacted]")


@pytest.mark.usefixtures("restore_root_logger")
@pytest.mark.parametrize("level", ["debug", "info", "warning"])
def test_other_libraries_log_from_warning_up_unless_at_debug(level: str) -> None:
    output = io.StringIO()
    configure_logging(level, output)
    for name in ("batchgate.engine", "httpx", "anthropic"):
        logger = logging.getLogger(name)
        logger.debug("debug line")
        logger.info("info line")
        logger.warning("warning line")
    logged = [
        (line["logger"], line["level"]) for line in map(json.loads, output.getvalue().splitlines())
    ]
    expected = {
        "debug": [
            (name, level)
            for name in ("batchgate.engine", "httpx", "anthropic")
            for level in ("debug", "info", "warning")
        ],
        "info": [
            ("batchgate.engine", "info"),
            ("batchgate.engine", "warning"),
            ("httpx", "warning"),
            ("anthropic", "warning"),
        ],
        "warning": [
            ("batchgate.engine", "warning"),
            ("httpx", "warning"),
            ("anthropic", "warning"),
        ],
    }[level]
    assert logged == expected
