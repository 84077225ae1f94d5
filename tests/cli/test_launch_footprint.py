"""Each launch of `batchgate` (`--help`, `config show`, a client command) loads the CLI only: the
server, the engine, the HTTP clients and psycopg load in the commands that use them."""

import subprocess
import sys

HEAVY = ("batchgate.server", "batchgate.engine", "starlette", "httpx", "psycopg", "anthropic")

LOADED_BY_THE_CLI = """
import sys
from batchgate.cli import app
heavy = {heavy!r}
print(",".join(sorted(name for name in sys.modules if name.startswith(heavy))))
"""


def test_the_cli_loads_without_the_server_the_engine_or_the_http_clients() -> None:
    run = subprocess.run(
        [sys.executable, "-c", LOADED_BY_THE_CLI.format(heavy=HEAVY)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert run.stdout.strip() == ""
