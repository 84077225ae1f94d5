"""The SDK client every command talks through, and the options that point it somewhere."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    import anthropic

BaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        envvar="ANTHROPIC_BASE_URL",
        show_envvar=True,
        help="The API to talk to: a batchgate server, or Anthropic's when unset.",
    ),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="ANTHROPIC_API_KEY",
        show_envvar=True,
        help="The key to send (any value for a batchgate without BATCHGATE_API_KEYS).",
    ),
]


def connect(base_url: str | None, api_key: str | None) -> anthropic.Anthropic:
    """An SDK client; unset options fall back to the SDK's own environment variables."""
    import anthropic

    return anthropic.Anthropic(base_url=base_url, api_key=api_key)
