"""Builds a running batchgate from settings and routes: store, engine, HTTP app, worker."""

import asyncio
import signal
from collections.abc import Sequence

from starlette.applications import Starlette

from batchgate.api.app import create_app
from batchgate.api.state import AppState
from batchgate.config.prices import NO_PRICES, PriceTable
from batchgate.config.routes import DEFAULT_ROUTES, RouteConfig
from batchgate.config.settings import Settings
from batchgate.engine.routing import Router
from batchgate.engine.worker import Engine
from batchgate.observability import metrics
from batchgate.storage import Store, open_store


def open_configured_store(settings: Settings) -> Store:
    return open_store(settings.database_url, settings.database_pool_size)


def build_app(
    settings: Settings,
    routes: Sequence[RouteConfig] = DEFAULT_ROUTES,
    prices: PriceTable = NO_PRICES,
    with_worker: bool = True,
) -> Starlette:
    store = open_configured_store(settings)
    engine = None
    if with_worker:
        engine = Engine(store, settings, Router.from_config(routes, settings), prices)
    return create_app(AppState(settings=settings, store=store, engine=engine, prices=prices))


def run_worker(
    settings: Settings, routes: Sequence[RouteConfig], prices: PriceTable = NO_PRICES
) -> None:
    """Runs only the engine until SIGTERM or SIGINT, then shuts it down gracefully."""
    store = open_configured_store(settings)
    engine = Engine(store, settings, Router.from_config(routes, settings), prices)

    async def until_signalled() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, engine.stop)
        await engine.run()

    try:
        asyncio.run(until_signalled())
    finally:
        store.close()
        metrics.process_exiting()
