"""Backends turn one request's params into one Anthropic Message."""
