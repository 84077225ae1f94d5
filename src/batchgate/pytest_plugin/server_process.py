"""A `batchgate serve` subprocess on a free port, with a SQLite database of its own."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

STARTUP_SECONDS = 30.0
SHUTDOWN_SECONDS = 15.0
# The server is local: a proxy configured in the environment must not stand in between.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ServerProcess:
    """Started by `start`, stopped by `stop`; its log is kept in `directory`.

    BATCHGATE_* variables of the calling environment are left out, so that only `environment`
    configures the server: a developer's own settings never leak into a test run.
    """

    def __init__(self, directory: Path, environment: Mapping[str, str], api_key: str) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = directory / "server.log"
        self._api_key = api_key
        self._environment = {
            **{
                name: value
                for name, value in os.environ.items()
                if not name.startswith("BATCHGATE_")
            },
            **environment,
            "BATCHGATE_DATABASE_URL": f"sqlite:///{directory / 'batchgate.db'}",
        }
        self._process: subprocess.Popen[bytes] | None = None

    def _answers(self) -> bool:
        probe = urllib.request.Request(
            f"{self.base_url}/v1/messages/batches", headers={"x-api-key": self._api_key}
        )
        try:
            with _DIRECT.open(probe, timeout=1):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    def start(self) -> None:
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "batchgate", "serve", "--port", str(self.port)],
                env=self._environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self._answers():
            if self._process.poll() is not None:
                raise RuntimeError(f"batchgate exited at start:\n{self.log.read_text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"batchgate did not answer in time:\n{self.log.read_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=SHUTDOWN_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
