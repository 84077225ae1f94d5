"""`batchgate submit` of a file in OpenAI's batch format: recognised by its lines (or
`--format openai`), sent through the `openai` SDK to batchgate's OpenAI Batch API."""

from pathlib import Path
from typing import Any

from cli.conftest import Cli, read_jsonl, write_jsonl


def line(custom_id: str, text: str, url: str = "/v1/chat/completions") -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": url,
        "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]},
    }


def test_an_openai_file_is_recognised_and_its_output_written(cli: Cli, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "batchinput.jsonl", [line(f"r{i}", f"q {i}") for i in range(3)])
    output = tmp_path / "out.jsonl"

    submitted = cli("submit", str(source), "--wait", "--interval", "0.05", "-o", str(output))

    assert submitted.exit_code == 0, submitted.output
    lines = {row["custom_id"]: row for row in read_jsonl(output.read_text())}
    assert sorted(lines) == ["r0", "r1", "r2"]
    assert lines["r1"]["response"]["body"]["choices"][0]["message"]["content"] == "You said: q 1"
    assert "completed, 3 completed, 0 failed" in submitted.stderr


def test_a_bad_openai_file_fails_naming_its_lines(cli: Cli, tmp_path: Path) -> None:
    source = write_jsonl(
        tmp_path / "bad.jsonl", [line("a", "x"), line("a", "y"), line("b", "z", "/v1/embeddings")]
    )

    submitted = cli("submit", str(source), "--format", "openai")

    assert submitted.exit_code == 1, submitted.output
    assert submitted.stdout.startswith("batch_")
    assert f"{source}:2: duplicate_custom_id" in submitted.stderr
    assert f"{source}:3: mismatched_url" in submitted.stderr
