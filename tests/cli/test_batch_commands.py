"""status, ls, cancel and delete: tables for people, --json for scripts, exit 2 on failures."""

import json
import time
from collections.abc import Callable

from anthropic.types.messages import MessageBatch

from cli.conftest import Cli, free_port_url
from conftest import Server, simple_request, wait_until_ended


def ended_batch(server: Server, size: int = 1) -> MessageBatch:
    client = server.client()
    batch = client.messages.batches.create(
        requests=[simple_request(f"r{i}") for i in range(size)]  # type: ignore[misc]
    )
    return wait_until_ended(client, batch.id)


def test_status_shows_a_batch_and_its_json_parses_back(cli: Cli, server: Server) -> None:
    batch = ended_batch(server, size=3)

    shown = cli("status", batch.id)
    as_json = cli("status", batch.id, "--json")

    assert shown.exit_code == 0, shown.output
    assert batch.id in shown.stdout and "ended" in shown.stdout
    assert "3 succeeded · 0 errored · 0 canceled · 0 expired" in shown.stdout
    parsed = json.loads(as_json.stdout)
    assert parsed == batch.to_dict(mode="json")
    assert parsed["request_counts"]["succeeded"] == 3


def test_status_wait_follows_a_batch_to_its_end(slow_server: Server) -> None:
    client = slow_server.client()
    batch = client.messages.batches.create(
        requests=[simple_request(f"r{i}") for i in range(6)]  # type: ignore[misc]
    )

    followed = Cli(slow_server.base_url)(
        "status", batch.id, "--wait", "--interval", "0.05", "--json"
    )

    assert followed.exit_code == 0, followed.output
    assert json.loads(followed.stdout)["processing_status"] == "ended"
    assert "6/6" in followed.stderr


def test_status_wait_is_woken_by_the_server_s_events_not_its_interval(
    slow_server: Server,
) -> None:
    client = slow_server.client()
    batch = client.messages.batches.create(
        requests=[simple_request(f"r{i}") for i in range(6)]  # type: ignore[misc]
    )
    started = time.monotonic()

    # Polling every 60 s would see the end a minute later; the event stream says so at once.
    followed = Cli(slow_server.base_url)("status", batch.id, "--wait", "--interval", "60", "--json")

    assert followed.exit_code == 0, followed.output
    assert json.loads(followed.stdout)["processing_status"] == "ended"
    assert time.monotonic() - started < 20


def test_ls_lists_newest_first_one_page_or_all(start_server: Callable[..., Server]) -> None:
    server = start_server()
    created = [ended_batch(server).id for _ in range(23)]
    newest_first = created[::-1]
    cli = Cli(server.base_url)

    table = cli("ls", "--limit", "3")
    default = cli("ls", "--json")
    everything = cli("ls", "--all", "--json")

    assert table.exit_code == 0, table.output
    positions = [table.stdout.index(batch_id) for batch_id in newest_first[:3]]
    assert positions == sorted(positions)
    assert newest_first[3] not in table.stdout
    assert [batch["id"] for batch in json.loads(default.stdout)] == newest_first[:20]
    assert [batch["id"] for batch in json.loads(everything.stdout)] == newest_first


def test_ls_of_no_batches_says_so(start_server: Callable[..., Server]) -> None:
    listed = Cli(start_server().base_url)("ls")
    assert listed.exit_code == 0
    assert listed.stdout == "" and "No batches." in listed.stderr


def test_cancel_stops_requests_not_yet_started(slow_server: Server) -> None:
    client = slow_server.client()
    batch = client.messages.batches.create(
        requests=[simple_request(f"r{i}") for i in range(20)]  # type: ignore[misc]
    )

    canceled = Cli(slow_server.base_url)("cancel", batch.id, "--json")

    assert canceled.exit_code == 0, canceled.output
    parsed = json.loads(canceled.stdout)
    assert parsed["id"] == batch.id and parsed["cancel_initiated_at"] is not None
    assert wait_until_ended(client, batch.id).request_counts.canceled > 0


def test_delete_removes_an_ended_batch_and_refuses_a_running_one(
    cli: Cli, server: Server, slow_server: Server
) -> None:
    batch = ended_batch(server)

    deleted = cli("delete", batch.id, "--json")
    gone = cli("status", batch.id)

    assert deleted.exit_code == 0, deleted.output
    assert json.loads(deleted.stdout) == {"id": batch.id, "type": "message_batch_deleted"}
    assert gone.exit_code == 2
    assert "not_found_error" in gone.stderr and "HTTP 404" in gone.stderr

    running = slow_server.client().messages.batches.create(
        requests=[simple_request(f"r{i}") for i in range(20)]  # type: ignore[misc]
    )
    refused = Cli(slow_server.base_url)("delete", running.id)
    assert refused.exit_code == 2
    assert "invalid_request_error" in refused.stderr
    slow_server.client().messages.batches.cancel(running.id)


def test_flags_override_the_environment_and_failures_exit_2(cli: Cli, server: Server) -> None:
    unreachable = cli("ls", "--base-url", free_port_url())
    keyless = cli("ls", api_key=None)
    keyed_by_flag = cli("ls", "--json", "--api-key", "another-key", api_key=None)

    assert unreachable.exit_code == 2
    assert "cannot reach" in unreachable.stderr
    assert keyless.exit_code == 2
    assert "no API key: set ANTHROPIC_API_KEY or pass --api-key" in keyless.stderr
    assert keyed_by_flag.exit_code == 0, keyed_by_flag.output
