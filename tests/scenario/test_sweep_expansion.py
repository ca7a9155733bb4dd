"""expand_sweep: the grid's Cartesian product times the seeds, each point a resolved scenario."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from scenario_helpers import SCENARIOS

from fedmobile_actors.errors import ScenarioError
from fedmobile_actors.scenario import load_scenario, scenario_to_yaml
from fedmobile_actors.scenario.schema import AlwaysOn, MarkovAvailability
from fedmobile_actors.scenario.sweep import expand_sweep

GRID = """
name: grid
fleet: {availability: {model: bernoulli, p_online: 0.5}}
sweep:
  grid:
    fleet.failure_prob: [0.0, 0.25]
    fleet.availability: [{model: always}, {model: markov, mean_on_s: 30}]
  seeds: [3, 4]
"""


def test_points_are_the_product_in_file_order_times_seeds(write: Callable[..., Path]) -> None:
    """2 x 2 grid x 2 seeds = 8 points; last key fastest, seeds innermost; params hold all."""
    points = expand_sweep(load_scenario(write(GRID)))
    assert len(points) == 8
    order = [
        (p.params["fleet.failure_prob"], p.params["fleet.availability"]["model"], p.params["seed"])
        for p in points
    ]
    assert order == [(f, a, s) for f in (0.0, 0.25) for a in ("always", "markov") for s in (3, 4)]


def test_each_point_is_resolved_with_its_values(write: Callable[..., Path]) -> None:
    """Values are substituted, the seed set, the sweep block removed, a union member switched."""
    points = expand_sweep(load_scenario(write(GRID)))
    last = points[-1].scenario
    assert last.fleet.failure_prob == 0.25
    assert last.fleet.availability == MarkovAvailability(mean_on_s=30)
    assert last.seed == 4
    assert last.sweep is None
    assert points[0].scenario.fleet.availability == AlwaysOn()


def test_point_names_are_distinct_and_carry_the_params(write: Callable[..., Path]) -> None:
    """Run directories of a sweep are told apart by name: params and seed in the suffix."""
    names = [p.scenario.name for p in expand_sweep(load_scenario(write(GRID)))]
    assert len(set(names)) == len(names)
    assert names[0] == "grid-failure_prob=0.0-availability=always-seed=3"


def test_colliding_short_names_use_the_full_path(write: Callable[..., Path]) -> None:
    """Two keys ending in 'share' are named by their whole dotted path."""
    scenario = load_scenario(
        SCENARIOS / "stragglers.yaml",
        ["sweep={grid: {fleet.tiers.0.share: [0.1], fleet.tiers.2.share: [0.6]}}"],
    )
    [point] = expand_sweep(scenario)
    assert "fleet.tiers.0.share=0.1-fleet.tiers.2.share=0.6" in point.scenario.name


def test_a_swept_section_is_named_by_what_tells_it_apart() -> None:
    """Sections of the same kind show their differing fields, a lone kind only its tag, and
    ``algorithm.name`` reads ``algorithm``; never a bare grid position."""
    names = [
        p.scenario.name for p in expand_sweep(load_scenario(SCENARIOS / "study_stragglers.yaml"))
    ]
    assert names[0] == "study_stragglers-rounds=deadline(overcommit=1.0)-seed=0"
    assert "study_stragglers-rounds=async-seed=0" in names
    names = [p.scenario.name for p in expand_sweep(load_scenario(SCENARIOS / "missing_90.yaml"))]
    assert names[0] == "missing_90-algorithm=fedavg-seed=0"


def test_point_scenario_round_trips_through_yaml(write: Callable[..., Path]) -> None:
    """A point's resolved YAML (stored in its run directory) loads back to the same scenario."""
    point = expand_sweep(load_scenario(write(GRID)))[5]
    assert load_scenario(write(scenario_to_yaml(point.scenario), "p.yaml")) == point.scenario


def test_seeds_only_sweep_repeats_the_scenario(write: Callable[..., Path]) -> None:
    """An empty grid with three seeds gives three points differing only in seed."""
    points = expand_sweep(load_scenario(write("sweep: {seeds: [0, 1, 2]}\n")))
    assert [p.params for p in points] == [{"seed": 0}, {"seed": 1}, {"seed": 2}]


def test_invalid_combination_is_a_scenario_error(write: Callable[..., Path]) -> None:
    """low 5 and high 3 each validate against the base (1, 8), not together: the point is named."""
    scenario = load_scenario(
        SCENARIOS / "stragglers.yaml",
        ["sweep={grid: {fleet.tiers.2.down_mbps.low: [5], fleet.tiers.2.down_mbps.high: [3]}}"],
    )
    with pytest.raises(ScenarioError) as info:
        expand_sweep(scenario)
    [line] = info.value.problems
    assert "sweep point fleet.tiers.2.down_mbps.low=5, fleet.tiers.2.down_mbps.high=3" in line
    assert "fleet.tiers.2.down_mbps.high: value 3: must be >= low (5)" in line


def test_scenario_without_sweep_block_is_an_error(write: Callable[..., Path]) -> None:
    """fedmobile sweep on a file without sweep: says what to add."""
    with pytest.raises(ScenarioError, match="no sweep block"):
        expand_sweep(load_scenario(write("")))


@pytest.mark.parametrize(
    ("name", "runs"),
    [
        ("dropout_sweep", 16),
        ("missing_90", 3),
        ("async_vs_deadline", 4),
        ("study_dropout", 12),
        ("study_correlated_availability", 10),
        ("study_stragglers", 9),
        ("study_missing_modality", 27),
        ("usc_had_authors_grid", 24),
    ],
)
def test_bundled_sweeps_expand(name: str, runs: int) -> None:
    """The library's sweep files expand to the number of runs their comments promise."""
    assert len(expand_sweep(load_scenario(SCENARIOS / f"{name}.yaml"))) == runs


VARIANTS = """
name: methods
sweep:
  variants:
    plain: {algorithm.name: fedavg}
    heavy: {algorithm.name: fedavg, algorithm.momentum: 0.9, fleet.failure_prob: 0.2}
  grid:
    algorithm.lr: [0.01, 0.1]
  seeds: [0, 1]
"""


def test_variants_set_their_paths_together_and_cross_the_grid(write: Callable[..., Path]) -> None:
    """2 variants x 2 grid values x 2 seeds, variants outermost; each variant's paths are set
    together in its points, its name is a param and the first part of the run name."""
    points = expand_sweep(load_scenario(write(VARIANTS)))
    assert [(p.params["variant"], p.params["algorithm.lr"], p.params["seed"]) for p in points] == [
        (v, lr, s) for v in ("plain", "heavy") for lr in (0.01, 0.1) for s in (0, 1)
    ]
    heavy = points[-1].scenario
    assert (heavy.algorithm.momentum, heavy.fleet.failure_prob, heavy.algorithm.lr) == (
        0.9,
        0.2,
        0.1,
    )
    assert (
        points[0].scenario.fleet.failure_prob == load_scenario(write("name: x")).fleet.failure_prob
    )
    assert points[0].scenario.name == "methods-variant=plain-lr=0.01-seed=0"


def test_a_sweep_without_variants_has_no_variant_param(write: Callable[..., Path]) -> None:
    assert all("variant" not in p.params for p in expand_sweep(load_scenario(write(GRID))))


@pytest.mark.parametrize(
    ("variants", "grid", "expected"),
    [
        ("{v: {algorithm.lr: 0.5}}", "{algorithm.lr: [0.1]}", "['algorithm.lr']: also set by"),
        (
            "{v: {fleet.availability.p_online: 0.5}}",
            "{fleet.availability: [{model: always}]}",
            "['fleet.availability.p_online']: also set by sweep.grid['fleet.availability']",
        ),
        ("{v: {seed: 3}}", "{}", "sweep.variants['v']['seed']: cannot be swept"),
        ("{v: {fleet.nonsense: 1}}", "{}", "sweep.variants['v']['fleet.nonsense']"),
        ("{v: {fleet.failure_prob: 7}}", "{}", "sweep.variants['v']: fleet.failure_prob: value 7"),
        ("{v: {}}", "{}", "sweep.variants['v']: value {}: needs at least one"),
        ("{'a b': {algorithm.lr: 0.5}}", "{}", "['a b']: key 'a b': not a valid name"),
    ],
)
def test_a_wrong_variant_is_named_at_load_time(
    write: Callable[..., Path], variants: str, grid: str, expected: str
) -> None:
    """Each mistake in a variant fails before the first run, with the variant and path named."""
    text = f"sweep: {{variants: {variants}, grid: {grid}}}\n"
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(text))
    assert any(expected in line for line in info.value.problems), info.value.problems


def test_a_grid_key_inside_a_variant_section_refines_it(write: Callable[..., Path]) -> None:
    """The variant sets a whole section, the grid one field inside it, set after the variant."""
    text = """
sweep:
  variants:
    markov: {fleet.availability: {model: markov, mean_on_s: 30, mean_off_s: 15}}
  grid:
    fleet.availability.mean_on_s: [60, 90]
"""
    points = expand_sweep(load_scenario(write(text)))
    assert [p.scenario.fleet.availability for p in points] == [
        MarkovAvailability(mean_on_s=60, mean_off_s=15),
        MarkovAvailability(mean_on_s=90, mean_off_s=15),
    ]


def test_a_grid_value_is_checked_under_every_variant(write: Callable[..., Path]) -> None:
    """Every variant runs at every grid point, so a grid value that does not fit one variant
    fails at load time, naming the variant."""
    text = """
sweep:
  variants:
    markov: {fleet.availability: {model: markov, mean_on_s: 30, mean_off_s: 15}}
    always: {fleet.availability: {model: always}}
  grid:
    fleet.availability.mean_on_s: [60]
"""
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(text))
    [line] = info.value.problems
    assert "sweep.grid['fleet.availability.mean_on_s'][0] with variant 'always'" in line
