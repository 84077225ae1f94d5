"""Where output goes: a command's product on stdout, everything meant for a person on stderr.

Consoles are made per call rather than once at import, so each reads the streams and the
terminal width of the moment (a test runner swaps both).
"""

from rich.console import Console


def stdout_console() -> Console:
    return Console(highlight=False)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def tell(*parts: object) -> None:
    """A message on stderr, never broken across lines, so that commands in it stay copyable."""
    stderr_console().print(*parts, markup=False, soft_wrap=True)
