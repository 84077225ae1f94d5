"""What the server-side commands of `batchgate` share: the database option and how they fail."""

from typing import Annotated

import typer

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        envvar="BATCHGATE_DATABASE_URL",
        help="Where batches are stored: sqlite:///PATH or postgresql://USER@HOST/DATABASE."
        " [default: sqlite:///./batchgate.db]",
    ),
]


def fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(2)
