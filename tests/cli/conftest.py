"""Running the client commands in-process against real servers."""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner, Result

from cli.client_app import app
from conftest import KEY, Server, free_port


@dataclass(frozen=True)
class Cli:
    """Runs `batchgate <args>` in-process, as a user with ANTHROPIC_* pointing at a server would."""

    base_url: str

    def __call__(self, *args: str, api_key: str | None = KEY, columns: int = 200) -> Result:
        environment = {
            "ANTHROPIC_BASE_URL": self.base_url,
            "ANTHROPIC_API_KEY": api_key,
            # By default wide enough that tables never truncate a batch id.
            "COLUMNS": str(columns),
        }
        return CliRunner().invoke(app, list(args), env=environment)


def free_port_url() -> str:
    """The URL of a port nothing listens on."""
    return f"http://127.0.0.1:{free_port()}"


def write_jsonl(path: Path, lines: list[object]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def read_jsonl(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in text.splitlines() if line]


def batch_ids(text: str) -> list[str]:
    return re.findall(r"msgbatch_\w+", text)


@pytest.fixture
def cli(server: Server) -> Cli:
    return Cli(server.base_url)


@pytest.fixture(scope="session")
def faulty_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Fails a third of the requests, always the same ones (faults follow the params)."""
    faulty = Server(tmp_path_factory.mktemp("faulty"), simulator_fault_rate="0.3").start()
    yield faulty
    faulty.stop()


@pytest.fixture(scope="session")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Two requests at a time, 200 ms each: batches stay in progress long enough to act on."""
    slow = Server(
        tmp_path_factory.mktemp("slow"), simulator_latency_ms="200", max_concurrency="2"
    ).start()
    yield slow
    slow.stop()
