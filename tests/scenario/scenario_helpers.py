"""Helpers for the scenario tests (a module of its own: every test folder has a conftest.py, so
``from conftest import`` would depend on collection order)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedmobile_actors.errors import ScenarioError
from fedmobile_actors.scenario import load_scenario

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "scenarios"

#: Bundled scenarios small enough to run two rounds in-process in a test.
SMALL_SCENARIOS = (
    "base",
    "quickstart",
    "stragglers",
    "trace_replay",
    "dropout_sweep",
    "missing_90",
    "modality_absent",
    "async_vs_deadline",
)


def problems_of(path: Path, overrides: tuple[str, ...] = ()) -> list[str]:
    """The ScenarioError lines of loading ``path`` (fails the test if it loads)."""
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, overrides)
    assert info.value.problems, "a ScenarioError must carry at least one line"
    for line in info.value.problems:
        assert "\n" not in line
    return info.value.problems
