"""Seeded selection of online, idle phones without a pass over the fleet."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np

from fedmobile_actors.fleet import Fleet
from fedmobile_actors.sim.selection import select_online

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
