"""Seeded selection of online, idle phones without a pass over the fleet."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest

from fedmobile_actors.fleet import Fleet
from fedmobile_actors.fleet.availability import AvailabilityModel
from fedmobile_actors.scenario.schema import BernoulliAvailability
from fedmobile_actors.sim import selection
from fedmobile_actors.sim.selection import fallback_order, lazy_order, select_online

FleetFactory = Callable[..., Fleet]  # the make_fleet fixture (conftest.py)


def test_selects_distinct_online_phones_outside_busy(make_fleet: FleetFactory) -> None:
    trace = [[(0.0, 10.0)] if p % 3 else [(50.0, 60.0)] for p in range(30)]  # every 3rd offline
    fleet = make_fleet(30, trace=trace)
    chosen = select_online(fleet, np.random.default_rng(0), 5.0, 0, want=8, busy={1, 2})
    assert len(chosen) == len(set(chosen)) == 8
    assert all(p % 3 != 0 and p not in (1, 2) for p in chosen)


def test_returns_every_eligible_phone_when_fewer_than_wanted(make_fleet: FleetFactory) -> None:
    trace = [[(0.0, 10.0)] if p in (4, 17, 250) else [(50.0, 60.0)] for p in range(300)]
    fleet = make_fleet(300, trace=trace)
    chosen = select_online(fleet, np.random.default_rng(1), 5.0, 0, want=10, busy={250})
    assert sorted(chosen) == [4, 17]
    assert select_online(fleet, np.random.default_rng(1), 70.0, 0, want=10) == []


def test_selection_is_roughly_uniform_over_eligible_phones(make_fleet: FleetFactory) -> None:
    fleet = make_fleet(20)
    counts = Counter(
        p
        for seed in range(2000)
        for p in select_online(fleet, np.random.default_rng(seed), 0, 0, 3)
    )
    assert set(counts) == set(range(20)) and max(counts.values()) / min(counts.values()) < 1.4


def test_fallback_order_up_to_the_bound_is_the_generators_permutation() -> None:
    """Fleets that ran before keep their draws: the fallback still walks gen.permutation(n)."""
    order = [p for chunk in fallback_order(np.random.default_rng(7), 5000) for p in chunk]
    assert order == np.random.default_rng(7).permutation(5000).tolist()


def test_lazy_order_is_a_uniform_permutation() -> None:
    for n in (1, 2, 257, 1000):
        order = [p for chunk in lazy_order(np.random.default_rng(n), n) for p in chunk]
        assert sorted(order) == list(range(n))
    firsts = Counter(next(lazy_order(np.random.default_rng(s), 10))[4] for s in range(20_000))
    assert set(firsts) == set(range(10)) and max(firsts.values()) / min(firsts.values()) < 1.15


def test_large_fleet_fallback_still_finds_every_eligible_phone(
    make_fleet: FleetFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(selection, "EXACT_ORDER_MAX", 10)  # 300 phones take the lazy order
    trace = [[(0.0, 10.0)] if p in (4, 17, 250) else [(50.0, 60.0)] for p in range(300)]
    fleet = make_fleet(300, trace=trace)
    chosen = select_online(fleet, np.random.default_rng(1), 5.0, 0, want=10, busy={250})
    assert sorted(chosen) == [4, 17]


def test_sparse_million_phone_fleet_checks_about_want_over_online_fraction_phones() -> None:
    """2% online, 50 wanted: about 2,500 phones are checked (one process each), not 10^6."""
    n = 1_000_000
    fleet = Fleet(
        tier_index=np.zeros(n, np.uint8),
        tier_names=("hand",),
        samples_per_second=np.full(n, 10.0),
        down_bps=np.full(n, 8e3),
        up_bps=np.full(n, 8e3),
        latency_s=np.full(n, 0.5),
        failure_prob=0.0,
        missing_rates=np.zeros((n, 0)),
        modality_names=(),
        class_index=np.zeros(n, np.uint8),
        class_names=("bernoulli",),
        model=AvailabilityModel(BernoulliAvailability(p_online=0.02), seed=3),
    )
    chosen = select_online(fleet, np.random.default_rng(0), 0.0, 5, want=50)
    assert len(set(chosen)) == 50
    assert all(fleet.availability(p).online_at(0.0, 5) for p in chosen)
    assert len(fleet._processes) < 6_000
