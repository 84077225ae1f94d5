"""/healthz and /readyz: open to load balancers without a key, saying nothing but the status."""

from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
from psycopg import sql
from starlette.testclient import TestClient

from batchgate.api.app import create_app
from batchgate.api.state import AppState
from batchgate.config.routes import DEFAULT_ROUTES
from batchgate.config.settings import Settings
from batchgate.engine.routing import Router
from batchgate.engine.worker import Engine
from batchgate.storage import open_store
from conftest import KEY, Cluster, Server
from postgres_databases import Databases


def test_probes_answer_without_an_api_key_and_reveal_nothing(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(api_keys=KEY)
    assert httpx.get(f"{server.base_url}/v1/messages/batches").status_code == 401

    alive = httpx.get(f"{server.base_url}/healthz")
    assert alive.status_code == 200 and alive.json() == {"status": "ok"}
    ready = httpx.get(f"{server.base_url}/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


def test_readyz_is_503_while_the_database_is_unreachable(
    cluster: Cluster, databases: Databases
) -> None:
    api = cluster.start_api()
    assert httpx.get(f"{api.base_url}/readyz").status_code == 200

    name = cluster.database_url.rsplit("/", 1)[1]
    databases.admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    databases.created.remove(name)

    not_ready = httpx.get(f"{api.base_url}/readyz", timeout=10)
    assert not_ready.status_code == 503
    assert not_ready.json() == {"status": "unavailable", "reason": "database unreachable"}
    assert httpx.get(f"{api.base_url}/healthz").status_code == 200


def test_readyz_is_503_while_the_schema_is_not_the_one_the_process_runs_with(
    cluster: Cluster,
) -> None:
    api = cluster.start_api()
    readyz = f"{api.base_url}/readyz"
    schema_not_current = {"status": "unavailable", "reason": "schema not current"}
    assert httpx.get(readyz).status_code == 200

    with psycopg.connect(cluster.database_url, autocommit=True) as db:
        # A `batchgate migrate` of a newer release, run by another deploy.
        db.execute("INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')")
        not_ready = httpx.get(readyz)
        assert (not_ready.status_code, not_ready.json()) == (503, schema_not_current)

        db.execute("DELETE FROM schema_migrations WHERE version = 9999")
        assert httpx.get(readyz).status_code == 200

        db.execute("DROP TABLE results")
        not_ready = httpx.get(readyz)
        assert (not_ready.status_code, not_ready.json()) == (503, schema_not_current)
    assert "lacks tables ['results']" in api.log.read_text()


def test_readyz_is_503_until_the_engine_runs(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'b.db'}")
    store = open_store(settings.database_url)
    engine = Engine(store, settings, Router.from_config(DEFAULT_ROUTES, settings))
    app = create_app(AppState(settings=settings, store=store, engine=engine))
    try:
        # Outside a `with` block TestClient runs no lifespan: the engine never starts.
        not_ready = TestClient(app).get("/readyz")
    finally:
        store.close()
    assert not_ready.status_code == 503
    assert not_ready.json() == {"status": "unavailable", "reason": "engine not running"}
