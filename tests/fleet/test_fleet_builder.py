"""build_fleet: tiers by share, per-phone draws, missing modalities, traces, speed."""

from __future__ import annotations

import pickle
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fedmobile_actors.errors import ScenarioError
from fedmobile_actors.fleet import build_fleet
from fedmobile_actors.fleet.builder import assign_tiers
from fedmobile_actors.scenario.schema import Scenario

NAMES = ("acc", "gyro", "mag")


def _scenario(**sections: Any) -> Scenario:
    sections.setdefault(
        "data", {"source": {"kind": "synthetic", "modalities": [{"name": n} for n in NAMES]}}
    )
    return Scenario.model_validate(sections)


def test_tier_counts_are_exact_by_largest_remainder() -> None:
    """0.3/0.5/0.2 of 7 phones: quotas 2.1/3.5/1.4 -> 2/4/1."""
    assert Counter(assign_tiers((0.3, 0.5, 0.2), 7, seed=0).tolist()) == {0: 2, 1: 4, 2: 1}
    fleet = build_fleet(_scenario(fleet={"phones": 1000}), NAMES)
    assert Counter(p.tier for p in fleet.phones) == {
        "flagship": 300,
        "midrange": 500,
        "budget": 200,
    }


def test_tiers_are_shuffled_by_seed_not_in_blocks() -> None:
    first = assign_tiers((0.5, 0.5), 100, seed=0)
    assert first[:50].sum() not in (0, 50)
    assert not np.array_equal(first, assign_tiers((0.5, 0.5), 100, seed=1))


def test_per_phone_draws_follow_the_tier_and_convert_mbps_to_bits() -> None:
    tiers = [
        {"name": "a", "share": 0.5, "samples_per_second": 100, "down_mbps": 5, "up_mbps": 2,
         "latency_s": 0.2},
        {"name": "b", "share": 0.5, "samples_per_second": {"dist": "uniform", "low": 10,
         "high": 20}, "down_mbps": 1, "up_mbps": 0.5},
    ]  # fmt: skip
    fleet = build_fleet(_scenario(fleet={"phones": 40, "tiers": tiers, "failure_prob": 0.1}), NAMES)
    for phone in fleet.phones:
        assert phone.failure_prob == 0.1
        if phone.tier == "a":
            assert (phone.samples_per_second, phone.down_bps, phone.up_bps, phone.latency_s) == (
                100.0, 5e6, 2e6, 0.2,
            )  # fmt: skip
        else:
            assert 10 <= phone.samples_per_second < 20 and phone.up_bps == 0.5e6
    speeds = {p.samples_per_second for p in fleet.phones if p.tier == "b"}
    assert len(speeds) == 20


def test_same_scenario_and_seed_give_the_same_fleet_and_another_seed_does_not() -> None:
    scenario = _scenario(fleet={"phones": 50}, modalities={"absence_prob": 0.3})
    assert build_fleet(scenario, NAMES) == build_fleet(scenario, NAMES)
    other = build_fleet(scenario.model_copy(update={"seed": 9}), NAMES)
    assert other.phones != build_fleet(scenario, NAMES).phones


def test_missing_rule_covers_its_fraction_of_phones_at_its_rate() -> None:
    modalities = {"missing": [{"modality": "acc", "rate": 0.8, "phones": 0.25}]}
    fleet = build_fleet(_scenario(fleet={"phones": 40}, modalities=modalities), NAMES)
    acc = [p.missing_rates["acc"] for p in fleet.phones]
    assert Counter(acc) == {0.8: 10, 0.0: 30}
    assert all(p.missing_rates["gyro"] == 0.0 for p in fleet.phones)


def test_later_missing_rule_overrides_an_earlier_one() -> None:
    modalities = {
        "missing": [
            {"modality": "gyro", "rate": 0.5},
            {"modality": "gyro", "rate": 1.0, "phones": 0.5},
        ]
    }
    fleet = build_fleet(_scenario(fleet={"phones": 20}, modalities=modalities), NAMES)
    assert Counter(p.missing_rates["gyro"] for p in fleet.phones) == {0.5: 10, 1.0: 10}


def test_absence_drops_modalities_with_its_probability_but_keeps_one_per_phone() -> None:
    fleet = build_fleet(_scenario(fleet={"phones": 3000}, modalities={"absence_prob": 0.6}), NAMES)
    rates = np.array([[p.missing_rates[m] for m in NAMES] for p in fleet.phones])
    assert set(np.unique(rates)) == {0.0, 1.0}
    assert (rates < 1.0).any(axis=1).all()
    # All three absent (p = 0.216) becomes two absent, so the absent share is below 0.6.
    expected = (0.6 * 3 - 0.6**3) / 3
    assert abs((rates == 1.0).mean() - expected) < 0.02


def test_absence_one_leaves_exactly_one_modality_per_phone() -> None:
    fleet = build_fleet(_scenario(fleet={"phones": 300}, modalities={"absence_prob": 1.0}), NAMES)
    kept = [next(m for m in NAMES if p.missing_rates[m] == 0.0) for p in fleet.phones]
    assert all(sum(r == 0.0 for r in p.missing_rates.values()) == 1 for p in fleet.phones)
    assert set(kept) == set(NAMES)


def test_unknown_modality_in_a_rule_is_a_scenario_error() -> None:
    scenario = Scenario.model_validate(
        {"data": {"source": {"kind": "npz", "path": "x.npz"}},
         "modalities": {"missing": [{"modality": "audio", "rate": 0.5}]}}
    )  # fmt: skip
    with pytest.raises(ScenarioError, match=r"modalities\.missing\[0\]\.modality: 'audio'"):
        build_fleet(scenario, ("acc", "gyro"))


def test_zero_bandwidth_is_a_scenario_error_naming_the_tier_field() -> None:
    tiers = [{"name": "a", "share": 1, "samples_per_second": 10, "down_mbps": 0, "up_mbps": 1}]
    with pytest.raises(ScenarioError, match=r"fleet\.tiers\[0\]\.down_mbps: drew 0"):
        build_fleet(_scenario(fleet={"phones": 3, "tiers": tiers}), NAMES)


def test_relative_trace_path_resolves_against_base_dir(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("phone,online_from,online_until\n0,5,10\n")
    scenario = _scenario(
        fleet={"phones": 3, "availability": {"model": "trace", "file": "t.csv"}},
        base_dir=str(tmp_path),
    )
    fleet = build_fleet(scenario, NAMES)
    assert fleet.availability(2).online_at(6.0, 0) and not fleet.availability(2).online_at(1.0, 0)
    assert fleet.availability(1) is fleet.availability(1)  # built once, cached


def test_five_thousand_phones_get_ids_in_order() -> None:
    """A large fleet is built whole, phone p at index p (build time: benchmarks/bench_sim.py)."""
    scenario = _scenario(
        fleet={"phones": 5000, "availability": {"model": "markov"}},
        modalities={"missing": [{"modality": "acc", "rate": 0.8}], "absence_prob": 0.2},
    )
    fleet = build_fleet(scenario, NAMES)
    assert len(fleet) == 5000 and [p.phone_id for p in fleet.phones] == list(range(5000))


def test_pickled_fleet_leaves_its_process_cache_behind() -> None:
    fleet = build_fleet(_scenario(fleet={"phones": 5, "availability": {"model": "markov"}}), NAMES)
    answer = fleet.availability(2).online_at(500.0, 0)
    copy = pickle.loads(pickle.dumps(fleet))
    assert copy == fleet and copy._processes == {}
    assert copy.availability(2).online_at(500.0, 0) == answer
