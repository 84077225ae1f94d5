"""Writes the upgrade fixtures with a batchgate release, for tests/upgrade/test_release_fixtures.py.

    git worktree add /tmp/release COMMIT
    .venv/bin/python tests/upgrade/make_fixtures.py --release /tmp/release --name release-COMMIT

It runs that release's own code (its src/ first on PYTHONPATH, with this checkout's .venv) on a
new SQLite file and on a new PostgreSQL database, and drives it with the official SDK:

- an API key, made with the release's `batchgate keys create`;
- `ended`: requests that succeed and requests whose params are invalid (errored results);
- `canceled`: a batch canceled while its requests run;
- `interrupted`: a batch whose server is killed with kill -9 in the middle of processing;
- where the release serves the OpenAI Batch API (`/v1/files`), the same with the `openai` SDK:
  `openai_ended` (a chat batch with an output and an error file) and `openai_interrupted`, whose
  24-hour window the writer moves a century on in the database after the kill (an OpenAI batch
  expires in 24 hours at most, whatever BATCHGATE_EXPIRY_SECONDS says).

For each store it writes, under tests/upgrade/fixtures/NAME/<store>/: the database (a SQLite
file, or a `pg_dump --inserts` of PostgreSQL), `expected.json` (the key, each batch as the
release served it, the custom_ids of the interrupted batch) and `<batch>.jsonl`, the results of
each ended batch as the release served them (for OpenAI batches, `<batch>.output.jsonl` and
`<batch>.error.jsonl`, its files' content). Batches neither expire nor get archived for a
century, so that the fixtures stay valid; the tests run the new release with the same settings.
"""

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import psycopg

sys.path.insert(0, str(Path(__file__).parents[1]))
from conftest import free_port
from postgres_databases import Databases

FIXTURES = Path(__file__).parent / "fixtures"
CENTURY = str(100 * 365 * 86_400)
POSTPONE_EXPIRY = f"UPDATE batches SET expires_at = expires_at + {CENTURY} WHERE id = %s"
SETTINGS = {
    "BATCHGATE_EXPIRY_SECONDS": CENTURY,
    "BATCHGATE_RETENTION_SECONDS": CENTURY,
    "BATCHGATE_SIMULATOR_LATENCY_MS": "100",
    "BATCHGATE_MAX_CONCURRENCY": "4",
    "BATCHGATE_CHUNK_SIZE": "16",
    "BATCHGATE_FLUSH_SECONDS": "0.1",
    "BATCHGATE_OPENAI_BATCH_FILE_EXPIRY_SECONDS": "0",
}


def request(custom_id: str, valid: bool = True) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": "claude-sonnet-4-5-20250929",
        "messages": [{"role": "user", "content": f"Tell me about {custom_id}"}],
    }
    if valid:
        params["max_tokens"] = 64
    return {"custom_id": custom_id, "params": params}


def chat_line(custom_id: str, **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": f"Tell me about {custom_id}"}],
            "max_tokens": 64,
            **body,
        },
    }


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


class Release:
    def __init__(self, source: Path, database_url: str, directory: Path) -> None:
        self.env = {
            **os.environ,
            **SETTINGS,
            "PYTHONPATH": str(source / "src"),
            "BATCHGATE_DATABASE_URL": database_url,
        }
        self.log = directory / "server.log"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def command(self, *arguments: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "batchgate", *arguments],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "batchgate", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        for _ in range(300):
            try:
                httpx.get(f"{self.base_url}/healthz", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(self.log.read_text())

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


def wait(client: anthropic.Anthropic, batch_id: str, until: Any) -> Any:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        batch = client.messages.batches.retrieve(batch_id)
        if until(batch):
            return batch
        time.sleep(0.02)
    raise RuntimeError(f"{batch_id} never got there")


def write_batches(release: Release, api_key: str, out: Path) -> str | None:
    """Drives the release; returns the interrupted OpenAI batch's id, if it serves them."""
    client = anthropic.Anthropic(base_url=release.base_url, api_key=api_key, max_retries=0)
    http = httpx.Client(base_url=release.base_url, headers={"x-api-key": api_key})
    ended = client.messages.batches.create(
        requests=[request(f"ended-{i}", valid=i % 3 != 2) for i in range(6)]
    )
    wait(client, ended.id, lambda b: b.processing_status == "ended")
    canceled = client.messages.batches.create(
        requests=[request(f"canceled-{i}") for i in range(40)]
    )
    wait(client, canceled.id, lambda b: b.request_counts.succeeded >= 2)
    client.messages.batches.cancel(canceled.id)
    wait(client, canceled.id, lambda b: b.processing_status == "ended")
    # The results as the release served them, byte for byte.
    for name, batch in (("ended", ended), ("canceled", canceled)):
        results = http.get(f"/v1/messages/batches/{batch.id}/results")
        (out / f"{name}.jsonl").write_bytes(results.content)
    serves_openai = http.get("/v1/files").status_code == 200
    openai_client = openai.OpenAI(base_url=f"{release.base_url}/v1", api_key=api_key, max_retries=0)
    openai_expected: dict[str, Any] = {}
    if serves_openai:
        openai_expected = write_openai_ended(openai_client, http, out)
    interrupted_ids = [f"interrupted-{i}" for i in range(60)]
    interrupted = client.messages.batches.create(
        requests=[request(custom_id) for custom_id in interrupted_ids]
    )
    if serves_openai:
        openai_expected["interrupted"] = start_openai_interrupted(openai_client, interrupted_ids)
    wait(client, interrupted.id, lambda b: b.request_counts.succeeded >= 8)
    if serves_openai:
        wait_openai(openai_client, openai_expected["interrupted"]["id"], 8)
    names = {"ended": ended.id, "canceled": canceled.id, "interrupted": interrupted.id}
    objects = {name: http.get(f"/v1/messages/batches/{id_}").json() for name, id_ in names.items()}
    if serves_openai:
        openai_expected["interrupted"] = http.get(
            f"/v1/batches/{openai_expected['interrupted']['id']}"
        ).json()
    release.kill()
    assert objects["interrupted"]["processing_status"] == "in_progress"
    expected: dict[str, Any] = {
        "api_key": api_key,
        "batches": objects,
        "interrupted_custom_ids": interrupted_ids,
    }
    if serves_openai:
        assert openai_expected["interrupted"]["status"] == "in_progress"
        expected["openai"] = openai_expected
    (out / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    return openai_expected.get("interrupted", {}).get("id")


def write_openai_ended(client: openai.OpenAI, http: httpx.Client, out: Path) -> dict[str, Any]:
    """An ended OpenAI chat batch (one line fails: the simulator gives one choice, not two),
    with its input file, its output and error files' content as the release served them."""
    lines = [chat_line(f"openai-ended-{i}", **({"n": 2} if i == 3 else {})) for i in range(6)]
    uploaded = client.files.create(file=("ended.jsonl", jsonl(lines)), purpose="batch")
    created = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"fixture": "openai_ended"},
    )
    deadline = time.monotonic() + 60
    while (batch := client.batches.retrieve(created.id)).status != "completed":
        assert time.monotonic() < deadline, batch.status
        time.sleep(0.05)
    assert batch.output_file_id is not None and batch.error_file_id is not None
    for kind, file_id in (("output", batch.output_file_id), ("error", batch.error_file_id)):
        (out / f"openai_ended.{kind}.jsonl").write_bytes(client.files.content(file_id).content)
    return {
        "input_file": http.get(f"/v1/files/{uploaded.id}").json(),
        "input_bytes": jsonl(lines).decode(),
        "ended": http.get(f"/v1/batches/{created.id}").json(),
    }


def start_openai_interrupted(client: openai.OpenAI, custom_ids: list[str]) -> dict[str, Any]:
    lines = [chat_line(f"openai-{custom_id}") for custom_id in custom_ids]
    uploaded = client.files.create(file=("interrupted.jsonl", jsonl(lines)), purpose="batch")
    created = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    return {"id": created.id}


def wait_openai(client: openai.OpenAI, batch_id: str, completed: int) -> None:
    deadline = time.monotonic() + 60
    while (batch := client.batches.retrieve(batch_id)).request_counts is None or (
        batch.request_counts.completed < completed
    ):
        assert time.monotonic() < deadline, batch.status
        time.sleep(0.02)


def make_sqlite(source: Path, out: Path, work: Path) -> None:
    path = work / "batchgate.db"
    release = Release(source, f"sqlite:///{path}", work)
    api_key = release.command("keys", "create", "--workspace", "fixture").strip()
    release.start()
    openai_interrupted = write_batches(release, api_key, out)
    db = sqlite3.connect(path, isolation_level=None)
    if openai_interrupted:
        db.execute(POSTPONE_EXPIRY.replace("%s", "?"), (openai_interrupted,))
    # The WAL's commits into the file, as a clean close would: one file to keep.
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    shutil.copyfile(path, out / "batchgate.sqlite3")


def make_postgres(source: Path, out: Path, work: Path) -> None:
    databases = Databases()
    try:
        url = databases.create()
        release = Release(source, url, work)
        release.command("migrate")
        api_key = release.command("keys", "create", "--workspace", "fixture").strip()
        release.start()
        openai_interrupted = write_batches(release, api_key, out)
        if openai_interrupted:
            with psycopg.connect(url, autocommit=True) as db:
                db.execute(POSTPONE_EXPIRY, (openai_interrupted,))
        dump = subprocess.run(
            ["pg_dump", "--inserts", "--no-owner", "--no-privileges", url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        # psql's meta-commands (\restrict …) are for psql; the tests load the SQL with psycopg.
        lines = [line for line in dump.splitlines() if not line.startswith("\\")]
        (out / "dump.sql").write_text("\n".join(lines) + "\n")
    finally:
        databases.drop_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--release", type=Path, required=True, help="a checkout of the release")
    parser.add_argument("--name", required=True, help="the fixture's folder, e.g. release-9e7d6b0")
    arguments = parser.parse_args()
    for store, make in (("sqlite", make_sqlite), ("postgres", make_postgres)):
        out = FIXTURES / arguments.name / store
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as work:
            make(arguments.release.resolve(), out, Path(work))
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
