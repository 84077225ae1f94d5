"""The client commands in an app of their own, as `batchgate` carries them; runnable as a script."""

import typer

from batchgate.cli.client import register

app = typer.Typer()


@app.callback()
def main() -> None:
    """The batchgate client commands."""


register(app)

if __name__ == "__main__":
    app()
