"""The routing file (`--config`): reading, checking, and which route serves which model."""

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from batchgate.backends.anthropic_upstream import AnthropicUpstreamBackend
from batchgate.backends.local_gguf import LocalGGUFBackend
from batchgate.backends.openai_chat import OpenAIChatBackend
from batchgate.backends.simulator import Simulator
from batchgate.config.file import read_config_file
from batchgate.config.routes import DEFAULT_ROUTES, RouteConfig
from batchgate.config.settings import ConfigError, Settings
from batchgate.engine.routing import Router
from batchgate.errors import RequestError

EVERY_BACKEND = """
[[routes]]
model = "claude-*"
backend = "anthropic"
base_url = "https://api.anthropic.com"
api_key_env = "TEST_UPSTREAM_KEY"
max_concurrency = 16
requests_per_minute = 1000
input_tokens_per_minute = 400000
output_tokens_per_minute = 80000
max_retries = 5
backoff_seconds = 1.5
timeout_seconds = 120

[[routes]]
model = "gpt-*"
backend = "openai"
base_url = "http://127.0.0.1:8000/v1"
upstream_model = "my-served-model"
max_concurrency = 32

[[routes]]
model = "smollm2*"
backend = "local"
model_path = "models/SmolLM2-135M-Instruct.Q4_1.gguf"
n_ctx = 4096
n_threads = 2

[[routes]]
model = "*"
backend = "simulator"
latency_ms = 20
fault_rate = 0.1
fault_types = ["overloaded_error"]
"""


def load_routes(path: Path, environ: Mapping[str, str]) -> tuple[RouteConfig, ...]:
    return read_config_file(path, environ).routes


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routes.toml"
    path.write_text(text)
    return path


def load(tmp_path: Path, text: str, **environ: str) -> object:
    return load_routes(write(tmp_path, text), environ)


def problem(tmp_path: Path, text: str, **environ: str) -> str:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, text, **environ)
    return str(raised.value)


def test_every_option_of_every_backend_is_read(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models/SmolLM2-135M-Instruct.Q4_1.gguf").touch()
    anthropic, openai, local, simulator = load_routes(
        write(tmp_path, EVERY_BACKEND), {"TEST_UPSTREAM_KEY": "sk-upstream"}
    )
    assert anthropic.api_key == "sk-upstream"
    assert "sk-upstream" not in repr(anthropic)
    assert (anthropic.max_concurrency, anthropic.requests_per_minute) == (16, 1000)
    assert (anthropic.input_tokens_per_minute, anthropic.output_tokens_per_minute) == (
        400_000,
        80_000,
    )
    assert (anthropic.max_retries, anthropic.backoff_seconds, anthropic.timeout_seconds) == (
        5,
        1.5,
        120.0,
    )
    assert (openai.upstream_model, openai.api_key, openai.max_retries) == (
        "my-served-model",
        None,
        8,
    )
    # A relative model path is relative to the routing file.
    assert local.model_path == str(tmp_path / "models/SmolLM2-135M-Instruct.Q4_1.gguf")
    assert (local.n_ctx, local.n_threads) == (4096, 2)
    assert (simulator.latency_ms, simulator.fault_rate, simulator.fault_types) == (
        20.0,
        0.1,
        ("overloaded_error",),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[[routes]]\nmodel = "*"\nbackend = "simulator"\nlatency = 5\n',
            "routes[0] (model '*'): latency is not an option",
        ),
        (
            '[[routes]]\nmodel = "*"\nbackend = "simulator"\n'
            '[[routes]]\nmodel = "x"\nbackend = "vllm"\n',
            "routes[1] (model 'x'): backend is 'vllm', not one of simulator, anthropic, openai,"
            " local",
        ),
        (
            '[[routes]]\nmodel = "gpt-*"\nbackend = "openai"\n',
            "routes[0] (model 'gpt-*'): base_url is required for backend openai",
        ),
        (
            '[[routes]]\nmodel = "claude-*"\nbackend = "anthropic"\n',
            "routes[0] (model 'claude-*'): base_url is required for backend anthropic",
        ),
        (
            '[[routes]]\nmodel = "s*"\nbackend = "local"\n',
            "routes[0] (model 's*'): model_path is required for backend local",
        ),
        (
            '[[routes]]\nbackend = "simulator"\n',
            "routes[0]: model is required for backend simulator",
        ),
        (
            '[[routes]]\nmodel = "*"\nbackend = "simulator"\nbase_url = "http://x"\n',
            "routes[0] (model '*'): base_url does not apply to simulator",
        ),
        (
            '[[routes]]\nmodel = "*"\nbackend = "openai"\nbase_url = "http://x"\n'
            "max_concurrency = 0\n",
            "routes[0] (model '*'): max_concurrency must be a whole number of at least 1",
        ),
        (
            '[[routes]]\nmodel = "*"\nbackend = "simulator"\nfault_rate = 2\n',
            "routes[0] (model '*'): fault_rate must be a number from 0 to 1",
        ),
        (
            '[[routes]]\nmodel = "*"\nbackend = "openai"\nbase_url = "http://x"\n'
            'api_key_env = "ABSENT_KEY"\n',
            "routes[0] (model '*'): api_key_env: the environment variable ABSENT_KEY is not set",
        ),
        (
            '[[routes]]\nmodel = "*"\nbackend = "openai"\nbase_url = "localhost:8000/v1"\n',
            "routes[0] (model '*'): base_url must be an http:// or https:// URL",
        ),
        (
            '[[routes]]\nmodel = "*"\nbackend = "local"\nmodel_path = "absent.gguf"\n',
            "routes[0] (model '*'): model_path: no file at ",
        ),
        (
            "[server]\nport = 1\n",
            "unknown key 'server'; the file holds [settings], [[routes]] and [[prices]]",
        ),
        ("routes = []\n", "routes must be a non-empty list of tables ([[routes]])"),
        ("[[routes]\n", "is not valid TOML"),
    ],
)
def test_mistakes_name_the_route_and_the_key(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in problem(tmp_path, text)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"absent\.toml: cannot be read"):
        load_routes(tmp_path / "absent.toml", {})


def router(tmp_path: Path, text: str) -> Router:
    (tmp_path / "models").mkdir(exist_ok=True)
    (tmp_path / "models/SmolLM2-135M-Instruct.Q4_1.gguf").touch()
    return Router.from_config(
        load_routes(write(tmp_path, text), {"TEST_UPSTREAM_KEY": "k"}), Settings()
    )


def test_each_model_goes_to_the_first_route_whose_glob_matches(tmp_path: Path) -> None:
    routes = router(tmp_path, EVERY_BACKEND)
    assert isinstance(routes.route_for("claude-haiku-4-5").backend, AnthropicUpstreamBackend)
    assert isinstance(routes.route_for("gpt-4o").backend, OpenAIChatBackend)
    assert isinstance(routes.route_for("smollm2-local").backend, LocalGGUFBackend)
    assert isinstance(routes.route_for("Claude-upper").backend, Simulator)


def test_a_model_no_route_matches_is_not_found(tmp_path: Path) -> None:
    routes = router(tmp_path, '[[routes]]\nmodel = "gpt-*"\nbackend = "simulator"\n')
    for _ in range(2):
        with pytest.raises(RequestError) as raised:
            routes.route_for("claude-haiku-4-5")
        assert raised.value.error_type == "not_found_error"
        assert "claude-haiku-4-5" in raised.value.message


def test_flow_control_is_skipped_only_by_simulator_routes_without_limits(tmp_path: Path) -> None:
    routes = router(
        tmp_path,
        EVERY_BACKEND.replace('model = "*"', 'model = "sim-limited"\nmax_concurrency = 2')
        + '[[routes]]\nmodel = "*"\nbackend = "simulator"\n',
    )
    assert routes.route_for("plain").flow is None
    limited = routes.route_for("sim-limited").flow
    assert limited is not None and limited.concurrency == 2
    anthropic = routes.route_for("claude-x").flow
    assert anthropic is not None and anthropic.concurrency == 16
    openai = routes.route_for("gpt-x").flow
    assert openai is not None and openai.concurrency == 32
    local = routes.route_for("smollm2").flow
    assert local is not None and local.concurrency == Settings().max_concurrency


def test_without_a_file_the_simulator_serves_every_model_with_the_settings_knobs() -> None:
    settings = Settings(simulator_latency_ms=5)
    route = Router.from_config(DEFAULT_ROUTES, settings).route_for("anything")
    assert isinstance(route.backend, Simulator)
    assert route.flow is None


def serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchgate", "serve", "--port", "1", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )


def test_serve_refuses_to_start_on_a_mistake_in_the_config(tmp_path: Path) -> None:
    path = write(tmp_path, '[[routes]]\nmodel = "gpt-*"\nbackend = "openai"\n')
    started = serve("--config", str(path))
    assert started.returncode == 2
    assert "routes[0] (model 'gpt-*'): base_url is required for backend openai" in started.stderr


def test_serve_reads_the_config_named_by_batchgate_config_and_needs_its_key_variable(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        '[[routes]]\nmodel = "*"\nbackend = "anthropic"\nbase_url = "http://127.0.0.1:9"\n'
        'api_key_env = "UPSTREAM_KEY_NOT_SET"\n',
    )
    started = serve(env={**os.environ, "BATCHGATE_CONFIG": str(path)})
    assert started.returncode == 2
    assert "the environment variable UPSTREAM_KEY_NOT_SET is not set" in started.stderr
