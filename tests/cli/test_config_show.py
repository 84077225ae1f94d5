"""`batchgate config show` and the layers of settings (file < environment < flags)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conftest import KEY, Server, free_port

ROUTES = """
[[routes]]
model = "claude-*"
backend = "anthropic"
base_url = "https://proxy-user:proxy-pass@upstream.example"
api_key_env = "UPSTREAM_KEY_FOR_TEST"

[[routes]]
model = "*"
backend = "simulator"
"""


def config_show(*arguments: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchgate", "config", "show", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


def test_shows_env_and_flags_with_secrets_masked(tmp_path: Path) -> None:
    routes = tmp_path / "routes.toml"
    routes.write_text(ROUTES)
    shown = config_show(
        "--database-url",
        "postgresql://batchgate:db-pass@db.example/batches",
        "--config",
        str(routes),
        BATCHGATE_DATABASE_URL="sqlite:///ignored.db",
        BATCHGATE_API_KEYS="team-key-1,team-key-2",
        BATCHGATE_CHUNK_SIZE="250",
        UPSTREAM_KEY_FOR_TEST="upstream-key",
    )
    assert shown.returncode == 0, shown.stderr
    for secret in ("db-pass", "team-key", "proxy-pass", "upstream-key"):
        assert secret not in shown.stdout

    config = json.loads(shown.stdout)
    settings = config["settings"]
    assert settings["database_url"] == "postgresql://batchgate:***@db.example/batches"
    assert settings["api_keys"] == ["***", "***"]
    assert settings["chunk_size"] == 250
    assert settings["shutdown_seconds"] == 10.0
    upstream, fallback = config["routes"]
    assert upstream["api_key"] == "***" and upstream["api_key_env"] == "UPSTREAM_KEY_FOR_TEST"
    assert upstream["base_url"] == "https://proxy-user:***@upstream.example"
    assert fallback["model"] == "*" and fallback["backend"] == "simulator"


def test_a_key_is_redacted_wherever_it_appears_unless_it_is_a_placeholder(tmp_path: Path) -> None:
    key = "AIzaSyD-a-key-that-goes-in-the-query-string"
    routes = tmp_path / "routes.toml"
    routes.write_text(
        f"""
[[routes]]
model = "gemini-*"
backend = "openai"
base_url = "https://gateway.example/v1?key={key}"
api_key_env = "GATEWAY_KEY_FOR_TEST"

[[routes]]
model = "k*"
backend = "openai"
base_url = "http://127.0.0.1:8000/v1"
api_key_env = "LOCAL_KEY_FOR_TEST"
"""
    )
    shown = config_show("--config", str(routes), GATEWAY_KEY_FOR_TEST=key, LOCAL_KEY_FOR_TEST="k")
    assert shown.returncode == 0, shown.stderr
    assert key not in shown.stdout
    gateway, local = json.loads(shown.stdout)["routes"]
    assert gateway["base_url"] == "https://gateway.example/v1?key=[redacted]"
    # A one-letter key is masked where it is the value, and nowhere else.
    assert (local["model"], local["api_key"]) == ("k*", "***")
    assert local["base_url"] == "http://127.0.0.1:8000/v1"


def test_names_the_bad_setting() -> None:
    shown = config_show(BATCHGATE_CHUNK_SIZE="lots")
    assert shown.returncode == 2
    assert "BATCHGATE_CHUNK_SIZE='lots'" in shown.stderr


def test_workspace_weights_must_be_name_and_a_positive_whole_number() -> None:
    shown = config_show(BATCHGATE_WORKSPACE_WEIGHTS="research=3,ops=1")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["settings"]["workspace_weights"] == ["research=3", "ops=1"]
    for bad in ("research", "research=0", "=2", "research=two"):
        shown = config_show(BATCHGATE_WORKSPACE_WEIGHTS=bad)
        assert shown.returncode == 2
        assert "BATCHGATE_WORKSPACE_WEIGHTS" in shown.stderr and repr(bad) in shown.stderr


def test_flags_win_over_the_environment_which_wins_over_the_file(tmp_path: Path) -> None:
    config = tmp_path / "batchgate.toml"
    config.write_text(
        "[settings]\n"
        'database_url = "sqlite:///from-file.db"\n'
        "chunk_size = 100\n"
        "lease_seconds = 12\n"
        'simulator_fault_types = ["overloaded_error"]\n'
    )
    shown = config_show(
        "--database-url",
        "sqlite:///from-flag.db",
        BATCHGATE_CONFIG=str(config),
        BATCHGATE_DATABASE_URL="sqlite:///from-env.db",
        BATCHGATE_CHUNK_SIZE="250",
    )
    assert shown.returncode == 0, shown.stderr

    config_shown = json.loads(shown.stdout)
    settings, sources = config_shown["settings"], config_shown["sources"]
    assert (settings["database_url"], sources["database_url"]) == (
        "sqlite:///from-flag.db",
        "--database-url",
    )
    assert (settings["chunk_size"], sources["chunk_size"]) == (250, "BATCHGATE_CHUNK_SIZE")
    assert (settings["lease_seconds"], sources["lease_seconds"]) == (12.0, str(config))
    assert settings["simulator_fault_types"] == ["overloaded_error"]
    assert (settings["max_concurrency"], sources["max_concurrency"]) == (256, "default")
    # Without [[routes]], the simulator serves every model.
    assert [(route["model"], route["backend"]) for route in config_shown["routes"]] == [
        ("*", "simulator")
    ]


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ("chunk_sise = 5", "[settings] chunk_sise is not a setting; did you mean chunk_size?"),
        ('chunk_size = "lots"', "[settings] chunk_size must be a whole number, not 'lots'"),
        ("expiry_seconds = true", "[settings] expiry_seconds must be a number, not True"),
        # Settings that can hold secrets never quote the value, only its type.
        (
            'api_keys = "sk-secret-key-1,k2"',
            "[settings] api_keys must be a list of strings, not a str (value not shown",
        ),
        (
            'database_url = ["postgresql://u:hunter2-password@db/batchgate"]',
            "[settings] database_url must be a string, not a list (value not shown",
        ),
    ],
)
def test_a_bad_setting_in_the_file_stops_the_start_naming_it_and_the_file(
    tmp_path: Path, settings: str, expected: str
) -> None:
    config = tmp_path / "batchgate.toml"
    config.write_text(f"[settings]\n{settings}\n")
    for command in (["config", "show"], ["serve", "--port", str(free_port())]):
        started = subprocess.run(
            [sys.executable, "-m", "batchgate", *command, "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert started.returncode == 2
        assert f"Cannot start: {config}: {expected}" in started.stderr
        assert "sk-secret-key-1" not in started.stderr
        assert "hunter2-password" not in started.stderr


def test_serve_runs_with_the_settings_of_the_file(tmp_path: Path) -> None:
    config = tmp_path / "batchgate.toml"
    config.write_text('[settings]\napi_keys = ["key-from-the-file"]\n')
    server = Server(tmp_path)
    server.arguments = ["--config", str(config)]
    server.start()
    try:
        batches = f"{server.base_url}/v1/messages/batches"
        assert httpx.get(batches, headers={"x-api-key": KEY}).status_code == 401
        assert httpx.get(batches, headers={"x-api-key": "key-from-the-file"}).status_code == 200
    finally:
        server.stop()


WIDE_ROUTE = """
[[routes]]
model = "*"
backend = "openai"
base_url = "http://127.0.0.1:8000/v1"
max_concurrency = 1024
"""
CAPPED = (
    "route *: max_concurrency 1024 is capped at 256 by BATCHGATE_MAX_CONCURRENCY;"
    " set it to at least 1024 for the route's full width"
)


def test_a_route_wider_than_the_engine_is_named_with_both_widths(tmp_path: Path) -> None:
    routes = tmp_path / "routes.toml"
    routes.write_text(WIDE_ROUTE)
    shown = config_show("--config", str(routes))
    assert shown.returncode == 0, shown.stderr
    assert f"warning: {CAPPED}" in shown.stderr
    config = json.loads(shown.stdout)
    assert config["settings"]["max_concurrency"] == 256
    assert config["routes"][0]["max_concurrency"] == 1024

    wide_enough = config_show("--config", str(routes), BATCHGATE_MAX_CONCURRENCY="1024")
    assert wide_enough.returncode == 0, wide_enough.stderr
    assert "warning" not in wide_enough.stderr


def test_serve_says_so_at_start_when_a_route_is_wider_than_the_engine(tmp_path: Path) -> None:
    routes = tmp_path / "routes.toml"
    routes.write_text(WIDE_ROUTE)
    server = Server(tmp_path)
    server.arguments = ["--config", str(routes)]
    server.start()
    server.stop()
    assert CAPPED in server.log.read_text()
