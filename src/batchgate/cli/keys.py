"""`batchgate keys create|list|revoke`: the API keys kept in the database (api/keys.py)."""

import contextlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from batchgate.api.keys import new_key
from batchgate.cli.help import add_command
from batchgate.cli.options import ConfigFile, DatabaseUrl, configure, fail
from batchgate.config.effective import mask_url
from batchgate.storage import Store, open_store
from batchgate.storage.base import ApiKeyRow, StoreUnavailable
from batchgate.storage.migrations import SchemaNotReady

keys_app = typer.Typer(
    help="API keys in the database: each belongs to a workspace, whose batches its keys share.",
    no_args_is_help=True,
)

Workspace = Annotated[str, typer.Option(help="The workspace: 1-64 letters, digits, '.', '_', '-'.")]


def configured_database(database_url: str | None, config: Path | None) -> str:
    return configure(database_url, config).settings.database_url


@contextlib.contextmanager
def opened_store(url: str) -> Iterator[Store]:
    try:
        store = open_store(url, pool_size=1)
    except (SchemaNotReady, StoreUnavailable, ValueError) as error:
        raise fail(f"Cannot open {mask_url(url)}: {error}") from None
    try:
        yield store
    finally:
        store.close()


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _shown(moment: float | None) -> str:
    if moment is None:
        return "-"
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def key_json(row: ApiKeyRow) -> dict[str, str | bool | None]:
    """A key as `list --json` prints it: everything but its hash."""
    return {
        "id": row.id,
        "workspace": row.workspace,
        "prefix": row.prefix,
        "created_at": _iso(row.created_at),
        "revoked_at": _iso(row.revoked_at),
        "read_only": row.read_only,
    }


def create(
    workspace: Workspace,
    read_only: Annotated[
        bool,
        typer.Option("--read-only", help="The key sees the workspace's batches, changes none."),
    ] = False,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Create a key for a workspace. The key is printed once, on stdout; only its hash is kept."""
    try:
        created = new_key(workspace, time.time(), read_only)
    except ValueError as error:
        raise fail(f"Cannot create a key: {error}.") from None
    url = configured_database(database_url, config)
    with opened_store(url) as store:
        store.create_api_key(created.row)
    typer.echo(created.key)
    typer.echo(
        f"Created {created.row.id}{' (read-only)' if read_only else ''} in workspace"
        f" {workspace!r} on {mask_url(url)}. This is the"
        " only time the key is shown: keep it somewhere safe.",
        err=True,
    )


def list_keys(
    workspace: Annotated[str | None, typer.Option(help="Only the keys of this workspace.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array, for scripts.")] = False,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """List the keys, oldest first: id, workspace, prefix, created, revoked. Never the keys."""
    with opened_store(configured_database(database_url, config)) as store:
        rows = [row for row in store.api_keys() if workspace in (None, row.workspace)]
    if as_json:
        typer.echo(json.dumps([key_json(row) for row in rows], indent=2))
        return
    # Plain columns, never truncated: ids and prefixes are for copying.
    lines = [("ID", "WORKSPACE", "PREFIX", "CREATED", "REVOKED")] + [
        (row.id, row.workspace, row.prefix, _shown(row.created_at), _shown(row.revoked_at))
        for row in rows
    ]
    widths = [max(len(line[column]) for line in lines) for column in range(5)]
    for line in lines:
        typer.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )


def revoke(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="The key's id (keys list).")],
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Revoke a key: every server refuses it within a second. Its batches stay in its workspace."""
    from batchgate.api.auth import REFRESH_SECONDS  # with starlette: only here, not at each launch

    with opened_store(configured_database(database_url, config)) as store:
        row = store.revoke_api_key(key_id, time.time())
    if row is None:
        raise fail(f"No key with id {key_id!r} (see `batchgate keys list`).")
    typer.echo(
        f"Revoked {row.id} (workspace {row.workspace!r}) at {_shown(row.revoked_at)};"
        f" servers refuse it within {REFRESH_SECONDS:g} s.",
        err=True,
    )


add_command(keys_app, create, "create")
add_command(keys_app, list_keys, "list")
add_command(keys_app, revoke, "revoke")
