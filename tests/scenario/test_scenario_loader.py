"""Loading scenario files: the bundled library, extends, overrides, defaults."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from scenario_helpers import SCENARIOS, problems_of

from fedmobile_actors.scenario import load_scenario, scenario_to_yaml
from fedmobile_actors.scenario.schema import MarkovAvailability, TraceAvailability


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_bundled_scenario_validates(path: Path) -> None:
    """Each file in scenarios/ loads, is named after its file and resolves paths from scenarios/."""
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    assert scenario.base_dir == str(SCENARIOS)


def test_resolved_yaml_of_a_scenario_loads_back_to_the_same_scenario(
    write: Callable[..., Path],
) -> None:
    """scenario_to_yaml output (what a run directory stores) is itself a valid scenario."""
    original = load_scenario(SCENARIOS / "stragglers.yaml")
    copy = load_scenario(write(scenario_to_yaml(original)))
    assert copy == original


def test_extends_merges_mappings_and_replaces_lists(write: Callable[..., Path]) -> None:
    """A child keeps the base's other keys in a mapping, and its lists replace the base's."""
    write("fleet: {phones: 7, failure_prob: 0.2}\nrounds: {rounds: 3}\n", "base.yaml")
    child = write(
        "extends: base.yaml\nfleet: {phones: 9}\n"
        "modalities: {missing: [{modality: acc, rate: 0.5}]}\n",
        "child.yaml",
    )
    scenario = load_scenario(child)
    assert (scenario.fleet.phones, scenario.fleet.failure_prob) == (9, 0.2)
    assert scenario.rounds.rounds == 3
    assert [r.modality for r in scenario.modalities.missing] == ["acc"]
    assert scenario.name == "child"


def test_extends_chains_through_the_library() -> None:
    """async_vs_deadline extends stragglers, which extends base: all three layers apply."""
    scenario = load_scenario(SCENARIOS / "async_vs_deadline.yaml")
    assert scenario.rounds.concurrency == 8  # its own
    assert scenario.rounds.deadline_s == 8  # from stragglers
    assert scenario.fleet.phones == 12  # from base
    assert [t.name for t in scenario.fleet.tiers] == ["flagship", "midrange", "budget"]


def test_extends_cycle_is_one_line(write: Callable[..., Path]) -> None:
    """a extends b extends a: the error names the chain instead of recursing forever."""
    write("extends: b.yaml\n", "a.yaml")
    b = write("extends: a.yaml\n", "b.yaml")
    [line] = problems_of(b)
    assert "circular" in line and "a.yaml" in line


def test_missing_base_file_names_the_base(write: Callable[..., Path]) -> None:
    """extends: nowhere.yaml fails naming nowhere.yaml."""
    [line] = problems_of(write("extends: nowhere.yaml\n"))
    assert "nowhere.yaml" in line and "not found" in line


def test_overrides_parse_values_as_yaml_and_index_lists() -> None:
    """-o values are YAML (numbers, mappings), and a list item is addressed by its index."""
    scenario = load_scenario(
        SCENARIOS / "stragglers.yaml",
        [
            "rounds.deadline_s=12.5",
            "fleet.availability={model: markov, mean_on_s: 30}",
            "fleet.tiers.0.share=0.2",
            "fleet.tiers.2.share=0.5",
        ],
    )
    assert scenario.rounds.deadline_s == 12.5
    assert scenario.fleet.availability == MarkovAvailability(mean_on_s=30)
    assert [t.share for t in scenario.fleet.tiers] == [0.2, 0.3, 0.5]


def test_relative_trace_path_resolves_against_the_scenario_directory() -> None:
    """trace_replay.yaml names traces/example_trace.csv relative to scenarios/."""
    scenario = load_scenario(SCENARIOS / "trace_replay.yaml")
    assert isinstance(scenario.fleet.availability, TraceAvailability)
    assert (Path(scenario.base_dir) / scenario.fleet.availability.file).is_file()


def test_empty_file_is_the_default_scenario(write: Callable[..., Path]) -> None:
    """An empty file is valid: every field has a default; the name is the file's stem."""
    scenario = load_scenario(write("", "empty.yaml"))
    assert scenario.name == "empty"
    assert scenario.fleet.phones == 20
