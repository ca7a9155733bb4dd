"""docs/scenarios.md's reference is generated from the schema and cannot drift from it."""

from __future__ import annotations

from scenario_helpers import REPO

from fedmobile_actors.scenario.docgen import (
    BEGIN,
    END,
    committed_reference,
    render_reference,
    replace_reference,
    sections,
)

DOCS = REPO / "docs" / "scenarios.md"


def test_committed_reference_equals_the_generated_one() -> None:
    """If this fails: python -m fedmobile_actors.scenario.docgen --write docs/scenarios.md"""
    assert committed_reference(DOCS.read_text(encoding="utf-8")) == render_reference()


def test_every_field_of_every_section_is_documented() -> None:
    """Each model reachable from Scenario has a heading, and each of its fields a table row."""
    reference = render_reference()
    for _, model in sections():
        assert f"### {model.__name__}\n" in reference
        for name in model.model_fields:
            assert f"| `{name}` |" in reference.split(f"### {model.__name__}\n")[1]


def test_reference_shows_type_bounds_default_and_description() -> None:
    """failure_prob's row carries its type, its range, its default and its description."""
    row = next(line for line in render_reference().splitlines() if "| `failure_prob` |" in line)
    assert "float; 0 <= x < 1" in row and "`0.0`" in row and "crash" in row


def test_write_replaces_only_the_marked_section() -> None:
    """The hand-written text around the markers survives a refresh."""
    document = f"# Title\n\nhand text\n\n{BEGIN}\nold\n{END}\n"
    updated = replace_reference(document, render_reference())
    assert updated.startswith("# Title\n\nhand text\n\n")
    assert "\nold\n" not in updated
    assert committed_reference(updated) == render_reference()
