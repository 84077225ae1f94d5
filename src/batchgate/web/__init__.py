"""The web dashboard served at /ui: batches, a batch's progress, errors and results, and the
actions on them, with the same keys and workspaces as the API (docs/ui.md)."""

from batchgate.web.pages import routes

__all__ = ["routes"]
