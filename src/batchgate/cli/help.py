"""Commands added to a typer app with their docstrings as help that reads well at any width."""

import inspect
from collections.abc import Callable
from typing import Any

import typer


def _unwrapped(docstring: str) -> str:
    """Each paragraph of `docstring` on one line, paragraphs still a blank line apart."""
    paragraphs = inspect.cleandoc(docstring).split("\n\n")
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in paragraphs)


def add_command(
    app: typer.Typer, function: Callable[..., Any], name: str, panel: str | None = None
) -> None:
    """Adds `function` to `app` as the command `name`, its docstring as its help.

    typer keeps the line breaks of a help text (all but those of the command's own first
    paragraph), so a docstring wrapped at the source's line length would break its sentences
    there, and then again at the terminal's width: unwrapped, rich wraps them only where the
    terminal ends.
    """
    help_text = _unwrapped(function.__doc__ or "")
    app.command(name, help=help_text, rich_help_panel=panel)(function)
