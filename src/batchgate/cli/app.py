"""The `batchgate` command: the server side (serve, worker, migrate, config, keys) and the
client commands (submit, status, ls, results, ...)."""

import typer

from batchgate.cli import client, server
from batchgate.cli.keys import keys_app

app = typer.Typer(help="batchgate: a self-hosted Message Batches API.", no_args_is_help=True)
client.register(app)
server.register(app)
app.add_typer(keys_app, name="keys", rich_help_panel=server.PANEL)


@app.callback()
def main() -> None:
    """batchgate: a self-hosted Message Batches API."""
