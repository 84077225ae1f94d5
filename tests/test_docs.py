"""Every setting is documented: adding one without a line in docs/configuration.md fails here."""

from dataclasses import fields
from pathlib import Path

from batchgate.config import Settings

CONFIGURATION = Path(__file__).parent.parent / "docs" / "configuration.md"


def test_every_setting_is_in_the_configuration_reference() -> None:
    documented = CONFIGURATION.read_text()
    missing = [
        f"BATCHGATE_{setting.name.upper()}"
        for setting in fields(Settings)
        if f"`BATCHGATE_{setting.name.upper()}`" not in documented
    ]
    assert missing == [], f"document these in {CONFIGURATION.name}: {missing}"
