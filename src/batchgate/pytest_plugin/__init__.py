"""The batchgate pytest plugin: a real batchgate server for the tests of a batch pipeline.

Fixtures: `batchgate_server` (the base URL of a running batchgate: simulator backend, temporary
SQLite, a free port), `batchgate_client` and `batchgate_async_client` (official `anthropic`
clients pointed at it). `@pytest.mark.batchgate(...)` sets the server's simulator latency, fault
rate, time scale or any other setting; each distinct set of settings gets one server per session.
See docs/testing-your-pipeline.md.
"""

from collections.abc import Iterator

import anthropic
import pytest

from batchgate.pytest_plugin.server_process import ServerProcess
from batchgate.pytest_plugin.server_settings import ServerSettings

MARKER = "batchgate"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**settings): the settings of this test's batchgate_server: latency_ms,"
        " fault_rate, fault_types, time_scale, or any BATCHGATE_* setting by its lower-case name.",
    )


class ServerPool:
    """One running server per distinct settings, started when first asked for."""

    def __init__(self, directories: pytest.TempPathFactory) -> None:
        self._directories = directories
        self._servers: dict[ServerSettings, ServerProcess] = {}

    def server_for(self, settings: ServerSettings) -> ServerProcess:
        if settings not in self._servers:
            server = ServerProcess(
                self._directories.mktemp("batchgate"), dict(settings.environment), settings.api_key
            )
            server.start()
            self._servers[settings] = server
        return self._servers[settings]

    def stop_all(self) -> None:
        for server in self._servers.values():
            server.stop()


@pytest.fixture(scope="session")
def _batchgate_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    pool = ServerPool(tmp_path_factory)
    yield pool
    pool.stop_all()


@pytest.fixture
def _batchgate_settings(request: pytest.FixtureRequest) -> ServerSettings:
    """The `batchgate` markers of the test, the closest winning where they name the same key."""
    options: dict[str, object] = {}
    for marker in reversed(list(request.node.iter_markers(MARKER))):
        if marker.args:
            pytest.fail(
                f"@pytest.mark.{MARKER} takes keywords only, not {marker.args!r}", pytrace=False
            )
        options.update(marker.kwargs)
    try:
        return ServerSettings.from_options(options)
    except ValueError as error:
        pytest.fail(f"@pytest.mark.{MARKER}: {error}", pytrace=False)


@pytest.fixture
def batchgate_server(_batchgate_pool: ServerPool, _batchgate_settings: ServerSettings) -> str:
    """The base URL of a running batchgate with this test's settings."""
    return _batchgate_pool.server_for(_batchgate_settings).base_url


@pytest.fixture
def batchgate_client(
    batchgate_server: str, _batchgate_settings: ServerSettings
) -> Iterator[anthropic.Anthropic]:
    """An official SDK client talking to `batchgate_server`."""
    with anthropic.Anthropic(
        base_url=batchgate_server, api_key=_batchgate_settings.api_key
    ) as client:
        yield client


@pytest.fixture
def batchgate_async_client(
    batchgate_server: str, _batchgate_settings: ServerSettings
) -> anthropic.AsyncAnthropic:
    """An official async SDK client talking to `batchgate_server`.

    Not closed here: closing is a coroutine, which a sync fixture cannot await (and an async
    fixture would tie the plugin to one async test runner); its connections go with the client.
    """
    return anthropic.AsyncAnthropic(base_url=batchgate_server, api_key=_batchgate_settings.api_key)
