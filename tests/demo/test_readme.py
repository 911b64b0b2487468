"""The README: the lead's quick start stays, the configuration reference matches the models."""

from __future__ import annotations

from pathlib import Path

import pytest

from peernet.demo_reference import MEANINGS, config_reference, readme_section

README = Path(__file__).resolve().parents[2] / "README.md"


def test_quick_start_lines_are_kept() -> None:
    text = README.read_text()
    assert "./scripts/demo" in text
    assert "./scripts/test" in text


def test_configuration_reference_matches_the_settings_models() -> None:
    assert readme_section(README.read_text()) == config_reference(), (
        "README configuration reference is stale: run python -m peernet.demo_reference --write"
    )


def test_a_setting_without_a_meaning_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    node = dict(MEANINGS["node"])
    del node["timezone"]
    monkeypatch.setitem(MEANINGS, "node", node)
    with pytest.raises(KeyError, match="timezone"):
        config_reference()


def test_every_section_the_issue_names_is_there() -> None:
    text = README.read_text()
    for heading in ("## What peernet is, and for whom", "## Architecture",
                    "## Running a real node and hub on PostgreSQL", "## Configuration reference",
                    "## Security model", "## Privacy model", "## Operations", "## Changelog"):
        assert heading in text, heading
    assert text.index("## Layout") < text.index("## What peernet is")


def test_the_helper_aggregator_has_its_table(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "`PEERNET_HELPER_POLL_MS`" in config_reference()
    helper = dict(MEANINGS["helper"])
    del helper["poll_ms"]
    monkeypatch.setitem(MEANINGS, "helper", helper)
    with pytest.raises(KeyError, match="poll_ms"):
        config_reference()


def test_types_are_named_for_operators_not_by_module_path() -> None:
    rows = [line.split(" | ") for line in config_reference().splitlines()
            if line.startswith("| `oidc`") or line.startswith("| `disciplines`")]
    assert [row[2] for row in rows] == ["list[RecipientDiscipline]", "table or None",
                                        "table or None"]
    types = {line.split(" | ")[2] for line in config_reference().splitlines()
             if line.startswith("| ") and not line.startswith("| setting")}
    assert not [t for t in types if "." in t], types
