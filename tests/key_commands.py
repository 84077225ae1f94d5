"""`batchgate keys …` run in-process on a database, as an operator would run them."""

import re
from dataclasses import dataclass

from typer.testing import CliRunner, Result

from batchgate.cli import app


def keys_command(database_url: str, *arguments: str) -> Result:
    return CliRunner().invoke(app, ["keys", *arguments, "--database-url", database_url])


@dataclass(frozen=True)
class CreatedKey:
    key: str
    id: str


def create_key(database_url: str, workspace: str, read_only: bool = False) -> CreatedKey:
    flags = ("--read-only",) if read_only else ()
    created = keys_command(database_url, "create", "--workspace", workspace, *flags)
    assert created.exit_code == 0, created.output
    key_id = re.search(r"key_[0-9a-f]+", created.stderr)
    assert key_id is not None, created.stderr
    return CreatedKey(created.stdout.strip(), key_id[0])
