"""`batchgate serve` on the simulator leaves the anthropic SDK (~75 MB) unloaded."""

import subprocess
import sys
import textwrap
from pathlib import Path

# What `serve` does before uvicorn takes over: the CLI with every command, the app, the engine.
SERVE_WITHOUT_LISTENING = """
import sys
from batchgate.cli import app
from batchgate.config.settings import Settings
from batchgate.server import build_app

build_app(Settings(database_url="sqlite:///{database}"))
loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("anthropic", "openai"))
print(",".join(loaded))
"""


def test_serve_with_the_default_routes_does_not_import_the_sdks(tmp_path: Path) -> None:
    script = textwrap.dedent(SERVE_WITHOUT_LISTENING).format(database=tmp_path / "b.db")
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert run.stdout.strip() == ""
