"""The `batchgate` command line: every command, server side and client side (cli/app.py)."""

from batchgate.cli.app import app

__all__ = ["app"]
