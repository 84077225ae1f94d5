"""Real batchgate servers and workers for the tests, driven over HTTP with the official SDK."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anthropic
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from batchgate.storage.migrations.postgres import migrate
from postgres_databases import Databases

IN_FLIGHT = "batchgate_requests_in_flight"

KEY = "sk-test-key"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        help="run the long variants of the reliability suite (tests/reliability/README.md)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files with a test marked slow first, each in its own order: on pytest-xdist workers
    that take a file each (scripts/test), a long file started last would run on alone."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


@pytest.fixture(scope="session")
def long_run(request: pytest.FixtureRequest) -> bool:
    """True under `--long`: reliability tests then run their long variants."""
    return bool(request.config.getoption("--long"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    """One `batchgate serve` process on a free port and its own SQLite file."""

    def __init__(self, directory: Path, **settings: str) -> None:
        self.database = directory / "batchgate.db"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "BATCHGATE_DATABASE_URL": f"sqlite:///{self.database}",
            **{f"BATCHGATE_{name.upper()}": value for name, value in settings.items()},
        }
        self.log = directory / "server.log"
        self.arguments: list[str] = []
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "Server":
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "batchgate", "serve", "--port", str(self.port)),
                    *self.arguments,
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()}")
            try:
                httpx.get(f"{self.base_url}/v1/messages/batches", timeout=1)
                return self
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not start: {self.log.read_text()}")

    def kill(self) -> None:
        """`kill -9`: no chance to clean up."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self, api_key: str = KEY) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.base_url, api_key=api_key, max_retries=0)

    def async_client(self, api_key: str = KEY) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(base_url=self.base_url, api_key=api_key, max_retries=0)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Starts a server with the given settings (BATCHGATE_<NAME>); stopped after the test."""
    started: list[Server] = []

    def start(**settings: str) -> Server:
        server = Server(tmp_path, **settings).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A shared server with the embedded defaults and a little simulator latency."""
    shared = Server(tmp_path_factory.mktemp("shared")).start()
    yield shared
    shared.stop()


@pytest.fixture
def client(server: Server) -> anthropic.Anthropic:
    return server.client()


def wait_until_ended(
    client: anthropic.Anthropic, batch_id: str, timeout: float = 60
) -> anthropic.types.messages.MessageBatch:
    deadline = time.monotonic() + timeout
    while True:
        batch = client.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended":
            return batch
        if time.monotonic() > deadline:
            raise AssertionError(f"batch {batch_id} did not end: {batch}")
        time.sleep(0.05)


def wait_until_in_flight(server: Server, at_least: int = 1) -> None:
    """Until the engine has `at_least` backend calls in flight, by its gauge: a cancel from then
    on finds the batch running (a cancel before the engine took any request ends it at once)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        metrics = text_string_to_metric_families(httpx.get(f"{server.base_url}/metrics").text)
        in_flight = next(family for family in metrics if family.name == IN_FLIGHT)
        if sum(sample.value for sample in in_flight.samples) >= at_least:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} requests went in flight")


def simple_request(
    custom_id: str, text: str = "Hello there", **params: object
) -> dict[str, object]:
    return {
        "custom_id": custom_id,
        "params": {
            "model": "claude-sonnet-4-5-20250929",
            "max_tokens": 1024,
            "messages": [{"role": "user", "content": text}],
            **params,
        },
    }


def run_cli(*arguments: str, database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchgate", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "BATCHGATE_DATABASE_URL": database_url},
    )


@pytest.fixture(scope="session")
def databases() -> Iterator[Databases]:
    created = Databases()
    created.drop_leftovers()
    yield created
    created.drop_all()


class Worker:
    """One `batchgate worker` process."""

    def __init__(self, database_url: str, log: Path, **settings: str) -> None:
        env = {
            **os.environ,
            "BATCHGATE_DATABASE_URL": database_url,
            **{f"BATCHGATE_{name.upper()}": value for name, value in settings.items()},
        }
        with log.open("ab") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "batchgate", "worker"], env=env, stdout=sink, stderr=sink
            )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """Terminates it; one that has not exited 15 s later is killed, never left behind."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def database_url(databases: Databases) -> str:
    url = databases.create()
    migrate(url)
    return url


@pytest.fixture
def cluster(database_url: str, tmp_path: Path) -> Iterator["Cluster"]:
    running = Cluster(database_url, tmp_path)
    yield running
    running.stop()


class Cluster:
    """An API-only server and any number of workers sharing one database."""

    def __init__(self, database_url: str, directory: Path) -> None:
        self.database_url = database_url
        self.directory = directory
        self.api: Server | None = None
        self.workers: list[Worker] = []

    def start_api(self, **settings: str) -> Server:
        self.api = Server(self.directory, **settings)
        self.api.env["BATCHGATE_DATABASE_URL"] = self.database_url
        self.api.arguments = ["--no-worker"]
        return self.api.start()

    def start_worker(self, via: str | None = None, **settings: str) -> Worker:
        """`via`: another URL of the same database, such as a proxy's."""
        log = self.directory / "workers.log"
        worker = Worker(via or self.database_url, log, **settings)
        self.workers.append(worker)
        return worker

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        if self.api is not None:
            self.api.stop()
