"""The control extensions in the client commands: submit's labels, priority and abort
policies; ls filtered by label and status; status showing usage, cost and cancel reasons."""

import json
import re
import uuid
from pathlib import Path

from cli.conftest import Cli, batch_ids, write_jsonl
from conftest import Server, simple_request, wait_until_ended


def test_submit_with_extensions_then_ls_and_status_show_them(
    cli: Cli, server: Server, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex
    source = write_jsonl(tmp_path / "requests.jsonl", [simple_request(f"r{i}") for i in range(3)])
    labeled = ("--label", f"run={run}", "--label", "team=research")

    submitted = cli(
        "submit", str(source), *labeled, "--priority", "3", "--abort-errored-share", "0.2",
        "--abort-min-results", "50", "--abort-max-output-tokens", "100000",
        "--completion-window", "3600",
    )  # fmt: skip
    assert submitted.exit_code == 0, submitted.output
    [batch_id] = batch_ids(submitted.stdout)
    other = cli("submit", str(source), "--label", f"run={run}", "--label", "team=ops")
    [other_id] = batch_ids(other.stdout)
    wait_until_ended(server.client(), batch_id)

    shown = json.loads(cli("status", batch_id, "--json").stdout)
    assert shown["metadata"] == {"run": run, "team": "research"}
    assert shown["priority"] == 3
    assert shown["abort"] == {
        "errored_share": 0.2,
        "min_results": 50,
        "max_output_tokens": 100000,
    }
    assert shown["usage"]["output_tokens"] > 0
    assert shown["cost"] is None
    table = cli("status", batch_id).stdout
    assert f"run={run}, team=research" in table
    assert "input · " in table and " output · " in table and "abort policy" in table

    listed = cli("ls", "--label", f"run={run}", "--label", "team=research", "--json")
    assert [batch["id"] for batch in json.loads(listed.stdout)] == [batch_id]
    both = cli("ls", "--label", f"run={run}", "--all")
    assert batch_ids(both.stdout) == sorted([batch_id, other_id], reverse=True)
    ended = cli("ls", "--label", f"run={run}", "--status", "ended", "--json")
    assert batch_id in [batch["id"] for batch in json.loads(ended.stdout)]


def test_status_shows_why_a_batch_was_canceled(slow_server: Server, tmp_path: Path) -> None:
    cli = Cli(slow_server.base_url)
    source = write_jsonl(tmp_path / "requests.jsonl", [simple_request(f"r{i}") for i in range(20)])
    [batch_id] = batch_ids(cli("submit", str(source)).stdout)
    cli("cancel", batch_id)
    shown = cli("status", batch_id).stdout
    assert re.search(r"cancel reason +user", shown), shown


def test_bad_labels_and_lone_min_results_fail_before_sending(cli: Cli, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "requests.jsonl", [simple_request("r")])
    bad_label = cli("submit", str(source), "--label", "no-equals")
    assert bad_label.exit_code == 2 and "--label takes KEY=VALUE" in bad_label.stderr
    lone = cli("submit", str(source), "--abort-min-results", "5")
    assert lone.exit_code == 2 and "goes with --abort-errored-share" in lone.stderr
