"""The pytest plugin, run by pytest itself (pytester): fixtures, markers and how it is loaded."""

import pytest

pytest_plugins = ["pytester"]

# The inner projects load the plugin from their conftest, as a user may before installing it.
CONFTEST = """
import time

import pytest

pytest_plugins = ["batchgate.pytest_plugin"]


@pytest.fixture
def run_batch(batchgate_client):
    def run(*prompts):
        batch = batchgate_client.messages.batches.create(
            requests=[
                {
                    "custom_id": f"r{number}",
                    "params": {
                        "model": "claude-sonnet-4-5-20250929",
                        "max_tokens": 64,
                        "messages": [{"role": "user", "content": prompt}],
                    },
                }
                for number, prompt in enumerate(prompts)
            ]
        )
        deadline = time.monotonic() + 30
        while batch.processing_status != "ended":
            assert time.monotonic() < deadline, batch
            time.sleep(0.05)
            batch = batchgate_client.messages.batches.retrieve(batch.id)
        return batch, list(batchgate_client.messages.batches.results(batch.id))

    return run
"""


def test_clients_reach_one_server_per_distinct_settings(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        """
        import asyncio

        import pytest

        SERVERS = {}


        def test_sync_client(batchgate_server, batchgate_client, run_batch):
            assert str(batchgate_client.base_url).rstrip("/") == batchgate_server
            batch, results = run_batch("hello")
            assert batch.request_counts.succeeded == 1
            assert results[0].result.message.content[0].text == "You said: hello"
            SERVERS["default"] = batchgate_server


        def test_async_client_on_the_same_server(batchgate_server, batchgate_async_client):
            async def listed():
                return (await batchgate_async_client.messages.batches.list()).data

            assert batchgate_server == SERVERS["default"]
            assert len(asyncio.run(listed())) == 1


        @pytest.mark.batchgate(fault_rate=1.0, fault_types=["overloaded_error"])
        def test_faults(batchgate_server, run_batch):
            batch, results = run_batch("a", "b")
            assert batch.request_counts.errored == 2
            assert {result.result.error.error.type for result in results} == {"overloaded_error"}
            assert batchgate_server != SERVERS["default"]
            SERVERS["faulty"] = batchgate_server


        @pytest.mark.batchgate(fault_types=("overloaded_error",), fault_rate=1.0)
        def test_equal_settings_share_a_server(batchgate_server):
            assert batchgate_server == SERVERS["faulty"]
        """
    )

    outcome = pytester.runpytest("--strict-markers")

    outcome.assert_outcomes(passed=4)


def test_the_closest_marker_wins_where_markers_meet(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.batchgate(fault_rate=1.0, fault_types=["overloaded_error"])


        @pytest.mark.batchgate(fault_types=["api_error"])
        def test_closest_wins(run_batch):
            batch, results = run_batch("x")
            assert {result.result.error.error.type for result in results} == {"api_error"}
        """
    )

    pytester.runpytest().assert_outcomes(passed=1)


def test_time_runs_faster_for_expiry_and_retention(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        """
        import time

        import anthropic
        import pytest


        # A day in a second; one request at a time, each taking longer than that.
        @pytest.mark.batchgate(time_scale=86_400, latency_ms=1_500, max_concurrency=1)
        def test_a_day_passes_in_a_second(run_batch):
            batch, results = run_batch("a", "b", "c")
            assert (batch.expires_at - batch.created_at).total_seconds() == pytest.approx(1.0)
            assert batch.request_counts.expired >= 1
            assert {result.result.type for result in results} <= {"succeeded", "expired"}


        # Long enough for run_batch to read the results first on a busy machine.
        @pytest.mark.batchgate(retention_seconds=3)
        def test_results_are_archived_after_retention(batchgate_client, run_batch):
            batch, _ = run_batch("a")
            deadline = time.monotonic() + 10
            while batchgate_client.messages.batches.retrieve(batch.id).archived_at is None:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            with pytest.raises(anthropic.NotFoundError):
                list(batchgate_client.messages.batches.results(batch.id))
        """
    )

    pytester.runpytest().assert_outcomes(passed=2)


def test_a_wrong_marker_fails_its_test_with_a_clear_message(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        """
        import pytest


        @pytest.mark.batchgate(latency=5)
        def test_unknown_setting(batchgate_server):
            pass


        @pytest.mark.batchgate(0.5)
        def test_positional(batchgate_server):
            pass


        @pytest.mark.batchgate(time_scale=0)
        def test_no_time(batchgate_server):
            pass


        @pytest.mark.batchgate(database_url="sqlite:///elsewhere.db")
        def test_own_database(batchgate_server):
            pass
        """
    )

    outcome = pytester.runpytest()

    outcome.assert_outcomes(errors=4)
    outcome.stdout.fnmatch_lines_random(
        [
            "*@pytest.mark.batchgate: unknown batchgate setting 'latency'; known: latency_ms,*",
            "*@pytest.mark.batchgate takes keywords only, not (0.5,)*",
            "*@pytest.mark.batchgate: time_scale must be a positive number, not 0*",
            "*@pytest.mark.batchgate: unknown batchgate setting 'database_url'*",
        ]
    )


def test_the_marker_is_registered(pytester: pytest.Pytester) -> None:
    outcome = pytester.runpytest("-p", "batchgate.pytest_plugin", "--markers")
    outcome.stdout.fnmatch_lines(["@pytest.mark.batchgate(**settings): *"])


def install_entry_point(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """A distribution of its own carries the entry point, named as batchgate's should be."""
    distribution = pytester.mkdir("site") / "batchgate_entry-0.dist-info"
    distribution.mkdir()
    (distribution / "METADATA").write_text("Metadata-Version: 2.1\nName: batchgate-entry\n")
    (distribution / "entry_points.txt").write_text(
        "[pytest11]\nbatchgate.pytest_plugin = batchgate.pytest_plugin\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(distribution.parent))


@pytest.mark.parametrize(
    ("conftest", "arguments"),
    [
        ("", []),
        ("", ["-p", "batchgate.pytest_plugin"]),
        ('pytest_plugins = ["batchgate.pytest_plugin"]', []),
    ],
    ids=["alone", "and-p", "and-pytest_plugins"],
)
def test_an_entry_point_named_after_the_module_loads_once_however_else_named(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, conftest: str, arguments: list[str]
) -> None:
    install_entry_point(pytester, monkeypatch)
    pytester.makeconftest(conftest)
    pytester.makepyfile(
        """
        def test_loaded_once(request):
            manager = request.config.pluginmanager
            plugin = manager.get_plugin("batchgate.pytest_plugin")
            names = [name for name, loaded in manager.list_name_plugin() if loaded is plugin]
            assert names == ["batchgate.pytest_plugin"]
        """
    )

    pytester.runpytest_subprocess(*arguments).assert_outcomes(passed=1)


def test_the_installed_plugin_can_be_turned_off(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_entry_point(pytester, monkeypatch)
    pytester.makepyfile(
        """
        def test_not_loaded(request):
            assert not request.config.pluginmanager.has_plugin("batchgate.pytest_plugin")
        """
    )

    pytester.runpytest_subprocess("-p", "no:batchgate.pytest_plugin").assert_outcomes(passed=1)
