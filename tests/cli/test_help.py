"""Every `batchgate ... --help`: the sentences of its texts break only where the terminal ends."""

import inspect
from collections.abc import Iterator

import pytest
from typer.core import TyperCommand, TyperGroup
from typer.main import get_command
from typer.testing import CliRunner

from batchgate.cli import app

Command = TyperCommand | TyperGroup


def commands(
    command: Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Command]]:
    yield path, command
    if isinstance(command, TyperGroup):
        for name, subcommand in command.commands.items():
            assert isinstance(subcommand, TyperCommand | TyperGroup)
            yield from commands(subcommand, (*path, name))


def paragraphs(text: str | None) -> list[str]:
    """The paragraphs of a help text, each as one line of single spaces."""
    return [" ".join(paragraph.split()) for paragraph in inspect.cleandoc(text or "").split("\n\n")]


def texts_shown(command: Command) -> list[str]:
    """What its --help shows of the command's own texts: its help, its parameters' and, for a
    group, the first paragraph of each command in it."""
    shown = paragraphs(command.help)
    shown += [text for param in command.params for text in paragraphs(getattr(param, "help", ""))]
    if isinstance(command, TyperGroup):
        shown += [paragraphs(sub.help)[0] for sub in command.commands.values()]
    return [text for text in shown if text]


BATCHGATE = get_command(app)
assert isinstance(BATCHGATE, TyperGroup)
COMMANDS = list(commands(BATCHGATE))


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=[" ".join(path) or "batchgate" for path, _ in COMMANDS]
)
def test_a_wide_terminal_shows_each_paragraph_on_one_line(
    path: tuple[str, ...], command: Command
) -> None:
    shown = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "1000"})

    assert shown.exit_code == 0, shown.output
    lines = [" ".join(line.strip(" │").split()) for line in shown.stdout.splitlines()]
    broken = [text for text in texts_shown(command) if not any(text in line for line in lines)]
    assert broken == []
