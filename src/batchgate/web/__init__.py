"""The web dashboard served at /ui: batches, a batch's progress, errors and results, and the
actions on them, with the same keys and workspaces as the API (docs/ui.md); OpenAI batches on
pages of their own (/ui/openai)."""

from batchgate.web import openai_pages, pages

# The OpenAI pages first: the others end with the dashboard's page for any unknown path.
routes = openai_pages.routes + pages.routes

__all__ = ["routes"]
