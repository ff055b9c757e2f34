"""README.md's configuration reference is generated from the settings models: it must not drift."""

from __future__ import annotations

from pathlib import Path

from ortel_cli.config_docs import current, render

README = Path(__file__).resolve().parents[2] / "README.md"


def test_configuration_reference_matches_the_settings_models() -> None:
    generated = render()
    for model in ("AgentSettings", "IngestSettings", "DashboardSettings", "SimSettings"):
        assert model in generated, f"{model} missing from the generated reference"
    assert current(README) == generated, "run `ortel config-docs --write`"


def test_readme_starts_with_the_two_commands() -> None:
    text = README.read_text()
    assert text.index("make demo") < text.index("## Architecture")
    assert text.index("make test") < text.index("## Architecture")
