"""`batchgate config show`: the effective settings and routes, with every secret masked."""

import json
import os
import subprocess
import sys
from pathlib import Path

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


def test_names_the_bad_setting() -> None:
    shown = config_show(BATCHGATE_CHUNK_SIZE="lots")
    assert shown.returncode == 2
    assert "BATCHGATE_CHUNK_SIZE='lots'" in shown.stderr
