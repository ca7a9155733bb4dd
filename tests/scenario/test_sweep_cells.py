"""Cell ids: a hash of a cell's resolved settings, blind to its name, order and output place."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from fedmobile_actors.scenario import load_scenario, scenario_to_yaml
from fedmobile_actors.scenario.sweep import cell_id, cell_id_of_yaml, expand_sweep

SWEEP = """
name: {name}
output: {{dir: {out}}}
sweep:
  grid:
{grid}
  seeds: [0, 1]
"""

LR = "    algorithm.lr: [0.01, 0.05]"
FAIL = "    fleet.failure_prob: [0.0, 0.3]"


def ids(write: Callable[..., Path], name: str, out: str, grid: str) -> list[str]:
    scenario = load_scenario(write(SWEEP.format(name=name, out=out, grid=grid), f"{name}.yaml"))
    return [cell_id(point.scenario) for point in expand_sweep(scenario)]


def test_same_settings_same_ids_whatever_the_order_name_or_output_dir(
    write: Callable[..., Path],
) -> None:
    """Grid keys swapped, another sweep name and output dir: the same set of cell ids."""
    first = ids(write, "a", "runs", f"{LR}\n{FAIL}")
    second = ids(write, "b", "elsewhere", f"{FAIL}\n{LR}")
    assert len(set(first)) == 8
    assert set(first) == set(second)
    assert first != second  # the order differs; the identities do not


def test_a_changed_setting_or_seed_is_another_cell(write: Callable[..., Path]) -> None:
    """Seeds 0 and 1 of one point, and lr 0.01 vs 0.05, are four different cells."""
    assert len(set(ids(write, "a", "runs", LR))) == 4


def test_the_id_of_a_stored_scenario_is_the_id_of_the_scenario(
    write: Callable[..., Path],
) -> None:
    """What a run directory stores (scenario.yaml) gives back its cell's id; junk gives None."""
    scenario = expand_sweep(load_scenario(write(SWEEP.format(name="a", out="r", grid=LR))))[1]
    assert cell_id_of_yaml(scenario_to_yaml(scenario.scenario)) == cell_id(scenario.scenario)
    assert cell_id_of_yaml("name: [unclosed") is None
    assert cell_id_of_yaml("just text") is None


def test_the_ray_to_join_is_not_part_of_a_cell(write: Callable[..., Path]) -> None:
    """runtime.address and num_cpus say where to run (a resumed sweep may join another Ray);
    the hosts a cell asks for are part of it."""
    path = write(SWEEP.format(name="a", out="r", grid=LR))
    base = [cell_id(p.scenario) for p in expand_sweep(load_scenario(path))]
    joined = load_scenario(path, ["runtime.address=auto", "runtime.num_cpus=3"])
    assert [cell_id(p.scenario) for p in expand_sweep(joined)] == base
    bigger = load_scenario(path, ["runtime.hosts=2"])
    assert set(cell_id(p.scenario) for p in expand_sweep(bigger)).isdisjoint(base)


def test_a_cell_stored_before_per_phone_data_existed_keeps_its_id(
    write: Callable[..., Path],
) -> None:
    """A scenario.yaml written before data.source.per_phone and runtime.shard_cache_mb existed
    (neither key in it) gives the id the same cell has now, so a resumed sweep finds it; the
    cache budget never changes a cell, turning per_phone on does."""
    path = write(SWEEP.format(name="a", out="r", grid=LR))
    point = expand_sweep(load_scenario(path))[0].scenario
    old = yaml.safe_load(scenario_to_yaml(point))
    del old["data"]["source"]["per_phone"], old["runtime"]["shard_cache_mb"]
    assert cell_id_of_yaml(yaml.safe_dump(old)) == cell_id(point)
    cached = expand_sweep(load_scenario(path, ["runtime.shard_cache_mb=8"]))[0].scenario
    assert cell_id(cached) == cell_id(point)
    turned_on = ["data.source.kind=synthetic", "data.source.per_phone.samples=16"]
    on_demand = expand_sweep(load_scenario(path, turned_on))[0]
    assert cell_id(on_demand.scenario) != cell_id(point)


def test_a_cell_stored_before_device_and_proxy_split_existed_keeps_its_id(
    write: Callable[..., Path],
) -> None:
    """runtime.device and data.proxy_split arrived after sweeps stored cell ids: at their
    "as before" values (auto, random) a stored cell without them keeps its id; any other value
    is another cell."""
    path = write(SWEEP.format(name="a", out="r", grid=LR))
    point = expand_sweep(load_scenario(path))[0].scenario
    old = yaml.safe_load(scenario_to_yaml(point))
    del old["runtime"]["device"], old["data"]["proxy_split"]
    assert cell_id_of_yaml(yaml.safe_dump(old)) == cell_id(point)
    for override in ("runtime.device=cpu", "data.proxy_split=blocked"):
        other = expand_sweep(load_scenario(path, [override]))[0].scenario
        assert cell_id(other) != cell_id(point)
