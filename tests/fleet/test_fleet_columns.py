"""The fleet as numpy columns: the same phones as the object build, specs on demand, small
pickles, and availability that costs only the phones asked about."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from legacy_fleet import legacy_phones

from fedmobile_actors.fleet import Fleet, PhoneSpec, build_fleet
from fedmobile_actors.fleet.availability import AvailabilityModel, MarkovOnline, ProcessCache
from fedmobile_actors.scenario.loader import load_scenario
from fedmobile_actors.scenario.schema import (
    MarkovAvailability,
    Scenario,
    SyntheticSource,
)
from fedmobile_actors.seeding import rng

SCENARIOS = sorted((Path(__file__).parents[2] / "scenarios").glob("*.yaml"))
NAMES = ("acc", "gyro", "mag")


def _names(scenario: Scenario) -> tuple[str, ...]:
    """The dataset's modality names, without loading it (USC-HAD has acc and gyro)."""
    source = scenario.data.source
    if isinstance(source, SyntheticSource):
        return tuple(m.name for m in source.modalities)
    return ("acc", "gyro")


def _data_key(scenario: Scenario) -> np.ndarray | None:
    """A stand-in for the world's per-phone main subject (the fleet only sorts by it)."""
    if scenario.fleet.correlation is None:
        return None
    return rng(scenario.seed, 0, 0, "test/data-key").integers(0, 6, scenario.fleet.phones)


def _same_as_legacy(scenario: Scenario, names: tuple[str, ...]) -> None:
    key = _data_key(scenario)
    fleet = build_fleet(scenario, names, key)
    old = legacy_phones(scenario, names, key)
    assert len(fleet) == len(old)
    for p, spec in enumerate(old):
        new = fleet.phone(p)
        assert new == spec, p
        # == on floats is exact, but say it: every float field is the very same double
        for name in ("samples_per_second", "down_bps", "up_bps", "latency_s", "failure_prob"):
            assert getattr(new, name).hex() == getattr(spec, name).hex()


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_bundled_scenario_draws_the_same_phones_as_the_object_build(path: Path) -> None:
    scenario = load_scenario(path)
    _same_as_legacy(scenario, _names(scenario))


@pytest.mark.parametrize(
    "fleet",
    [
        {"phones": 3000, "failure_prob": 0.2, "availability": {"model": "markov"}},
        {
            "phones": 777,
            "tiers": [
                {"name": "a", "share": 0.6, "samples_per_second": 100, "down_mbps": 5,
                 "up_mbps": 2, "latency_s": 0.2},
                {"name": "b", "share": 0.4, "samples_per_second": {"dist": "uniform", "low": 10,
                 "high": 20}, "down_mbps": 1, "up_mbps": 0.5},
            ],
            "availability_classes": [
                {"name": "rare", "share": 0.25, "availability": {"model": "bernoulli",
                 "p_online": 0.1}},
                {"name": "often", "share": 0.75, "availability": {"model": "always"}},
            ],
        },
    ],
)  # fmt: skip
def test_varied_fleets_draw_the_same_phones_as_the_object_build(fleet: dict[str, Any]) -> None:
    modalities = {
        "missing": [{"modality": "acc", "rate": 0.8, "phones": 0.4}],
        "absence_prob": 0.3,
    }
    data = {"source": {"kind": "synthetic", "modalities": [{"name": n} for n in NAMES]}}
    scenario = Scenario.model_validate({"data": data, "fleet": fleet, "modalities": modalities})
    _same_as_legacy(scenario, NAMES)


def _fleet(phones: int, **fleet: Any) -> Fleet:
    data = {"source": {"kind": "synthetic", "modalities": [{"name": n} for n in NAMES]}}
    scenario = Scenario.model_validate(
        {
            "data": data,
            "fleet": {"phones": phones, **fleet},
            "modalities": {"absence_prob": 0.3},
            "base_dir": str(SCENARIOS[0].parent),
        }
    )
    return build_fleet(scenario, NAMES)


def test_phone_spec_is_read_from_the_columns() -> None:
    fleet = _fleet(50, failure_prob=0.05)
    spec = fleet.phone(17)
    assert spec.tier == fleet.tier_names[fleet.tier_index[17]]
    assert (spec.down_bps, spec.up_bps) == (fleet.down_bps[17], fleet.up_bps[17])
    assert list(spec.missing_rates.values()) == fleet.missing_rates[17].tolist()
    assert spec.availability_class == "always" and spec.failure_prob == 0.05
    assert fleet.phones[17] == spec and fleet.phones[-1] == fleet.phone(49)
    assert fleet.phones[2:4] == (fleet.phone(2), fleet.phone(3))
    with pytest.raises(IndexError):
        fleet.phone(50)
    with pytest.raises(ValueError, match="read-only"):
        fleet.down_bps[0] = 1.0


def test_from_phones_round_trips_hand_made_specs() -> None:
    specs = [
        PhoneSpec(p, "t" + str(p % 2), 10.0 + p, 8e3, 4e3, 0.5, 0.1 * (p % 3), {"acc": 0.5}, "x")
        for p in range(6)
    ]
    fleet = Fleet.from_phones(specs)
    assert tuple(fleet.phones) == tuple(specs) and fleet.phones == specs
    assert fleet.tier_names == ("t0", "t1") and isinstance(fleet.failure_prob, np.ndarray)


def test_pickle_keeps_every_bit_and_no_processes() -> None:
    fleet = _fleet(2000, failure_prob=0.1, availability={"model": "markov"})
    answer = fleet.availability(2).next_offline(500.0, 0)
    copy = pickle.loads(pickle.dumps(fleet))
    assert copy == fleet and len(copy._processes) == 0
    assert copy.missing_rates.tobytes() == fleet.missing_rates.tobytes()
    assert copy.availability(2).next_offline(500.0, 0) == answer


def test_pickled_fleet_of_a_hundred_thousand_phones_is_about_thirty_bytes_a_phone() -> None:
    """Three drawn float columns (8 bytes each) plus one byte per tier, class, latency and
    modality: a 100,000-phone fleet ships in about 3 MB, not a hundred thousand objects."""
    fleet = _fleet(100_000, availability={"model": "markov"})
    for p in range(0, 100_000, 100):
        fleet.availability(p).online_at(1e4, 0)  # processes drawn on the server stay there
    size = len(pickle.dumps(fleet))
    assert size < 32 * 100_000


def test_process_cache_drops_the_least_recently_used() -> None:
    cache = ProcessCache(capacity=2)
    model = AvailabilityModel(MarkovAvailability(), seed=1)
    for p in (0, 1):
        cache.put(p, model.for_phone(p))
    assert cache.get(0) is not None  # 0 is now the most recent
    cache.put(2, model.for_phone(2))
    assert list(cache) == [0, 2]


def test_an_evicted_process_is_rebuilt_with_the_same_answers() -> None:
    fleet = _fleet(10, availability={"model": "markov", "mean_on_s": 50, "mean_off_s": 50})
    first = fleet.availability(3)
    answers = [(first.online_at(t, 0), first.next_offline(t, 0)) for t in (9e4, 10.0, 3e3)]
    fleet._processes.clear()
    again = fleet.availability(3)
    assert again is not first and isinstance(again, MarkovOnline)
    assert [(again.online_at(t, 0), again.next_offline(t, 0)) for t in (9e4, 10.0, 3e3)] == answers


@pytest.mark.parametrize(
    "availability",
    [
        {"model": "always"},
        {"model": "bernoulli", "p_online": 0.3},
        {"model": "markov"},
        {"model": "diurnal"},
        {"model": "trace", "file": "traces/example_trace.csv", "loop_s": 300},
    ],
    ids=lambda a: a["model"],
)
def test_availability_of_a_million_phone_fleet_builds_only_the_phones_asked(
    availability: dict[str, Any],
) -> None:
    fleet = _fleet(1_000_000, availability=availability)
    asked = rng(0, 0, 0, "test/asked").integers(0, 1_000_000, 200).tolist()
    for p in asked:
        fleet.availability(p).online_at(3_600.0, 4)
    assert len(fleet._processes) == len(set(asked))


def test_process_cache_stays_bounded_however_many_phones_are_asked() -> None:
    fleet = _fleet(100_000, availability={"model": "bernoulli", "p_online": 0.5})
    for p in range(0, 100_000, 3):
        fleet.availability(p)
    assert len(fleet._processes) == fleet._processes.capacity < 100_000 // 3


def test_class_models_follow_each_phones_class() -> None:
    fleet = _fleet(
        1000,
        availability_classes=[
            {"name": "rare", "share": 0.2, "availability": {"model": "bernoulli", "p_online": 0.1}},
            {"name": "on", "share": 0.8, "availability": {"model": "always"}},
        ],
    )
    rare = fleet.class_index == fleet.class_names.index("rare")
    assert rare.sum() == 200
    online = np.array([fleet.availability(p).online_at(0.0, 0) for p in range(1000)])
    assert online[~rare].all() and online[rare].mean() < 0.2
