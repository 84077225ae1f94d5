"""The docs stay true: every setting is documented, and every test a promise cites exists."""

import ast
import re
from dataclasses import fields
from pathlib import Path

from batchgate.config.settings import Settings

ROOT = Path(__file__).parent.parent
CONFIGURATION = ROOT / "docs" / "configuration.md"
RELIABILITY = ROOT / "docs" / "reliability.md"


def test_every_setting_is_in_the_configuration_reference() -> None:
    documented = CONFIGURATION.read_text()
    missing = [
        f"BATCHGATE_{setting.name.upper()}"
        for setting in fields(Settings)
        if f"`BATCHGATE_{setting.name.upper()}`" not in documented
    ]
    assert missing == [], f"document these in {CONFIGURATION.name}: {missing}"


def test_every_test_that_docs_reliability_cites_exists() -> None:
    """`path::name` and the `::name` that follow it in the same cell name test functions."""
    cited: list[tuple[str, str]] = []
    for cell in RELIABILITY.read_text().split("|"):
        path = None
        for match in re.finditer(r"`(tests/[\w/]+\.py)?::(\w+)", cell):
            path = match[1] or path
            assert path is not None, f"{match[0]} names no file"
            cited.append((path, match[2]))
    assert len(cited) > 20
    missing = []
    for path, name in cited:
        tree = ast.parse((ROOT / path).read_text())
        functions = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
        if name not in functions:
            missing.append(f"{path}::{name}")
    assert missing == [], f"docs/reliability.md cites tests that do not exist: {missing}"
