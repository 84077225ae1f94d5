"""The HTTP layer: Anthropic's Message Batches endpoints on Starlette."""
