"""The configuration a process runs with, as `batchgate config show` prints it: secrets masked,
and where each setting came from; and the secrets that its logs never show.

API keys, passwords in URLs and the routes' upstream keys never appear; that they are set does.
Each such field shows as the mask, whatever its value; a key that can be a secret
(batchgate/redaction.py) is also redacted wherever else it appears, as in a URL's query string.
"""

from dataclasses import asdict, fields
from typing import Any
from urllib.parse import urlsplit

from batchgate.config.file import Configuration
from batchgate.config.routes import RouteConfig
from batchgate.config.settings import Settings
from batchgate.redaction import Secrets

MASK = "***"


def mask_url(url: str) -> str:
    """The URL with the password it may carry replaced by the mask."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{parts.username or ''}:{MASK}@{host}").geturl()


def masked_settings(settings: Settings) -> dict[str, Any]:
    shown = {setting.name: getattr(settings, setting.name) for setting in fields(settings)}
    shown["database_url"] = mask_url(settings.database_url)
    shown["api_keys"] = [MASK for _ in settings.api_keys]
    return shown


def masked_route(route: RouteConfig) -> dict[str, Any]:
    shown = {name: value for name, value in asdict(route).items() if value is not None}
    if route.api_key is not None:
        shown["api_key"] = MASK
    if route.base_url is not None:
        shown["base_url"] = mask_url(route.base_url)
    return shown


def secrets_of(configuration: Configuration) -> Secrets:
    """The API keys (BATCHGATE_API_KEYS) and the routes' upstream keys.

    Passwords in URLs are masked where a URL is shown (`mask_url`), not hunted in all text:
    a database's password is often a word (`postgres`) that text is full of.
    """
    keys = (route.api_key for route in configuration.routes)
    return Secrets([*configuration.settings.api_keys, *keys])


def effective_config(configuration: Configuration) -> dict[str, Any]:
    shown = {
        "settings": masked_settings(configuration.settings),
        "sources": dict(configuration.sources),
        "routes": [masked_route(route) for route in configuration.routes],
    }
    redacted: dict[str, Any] = _redacted(shown, secrets_of(configuration))
    return redacted


def _redacted(value: Any, secrets: Secrets) -> Any:
    if isinstance(value, str):
        return secrets.redact(value)
    if isinstance(value, dict):
        return {name: _redacted(item, secrets) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item, secrets) for item in value]
    return value
