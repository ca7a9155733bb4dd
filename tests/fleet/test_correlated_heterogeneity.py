"""Availability classes and tiers/classes correlated with the phones' data (fleet.correlation)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest

from fedmobile_actors.errors import ScenarioError
from fedmobile_actors.fleet import build_fleet
from fedmobile_actors.fleet.availability import AlwaysOnline, BernoulliOnline
from fedmobile_actors.fleet.builder import correlated_assignment
from fedmobile_actors.scenario import validate_mapping
from fedmobile_actors.scenario.schema import Scenario

NAMES = ("acc", "gyro")
CLASSES = [
    {"name": "rare", "share": 0.25, "availability": {"model": "bernoulli", "p_online": 0.2}},
    {"name": "always", "share": 0.75, "availability": {"model": "always"}},
]


def _scenario(**fleet: Any) -> Scenario:
    return validate_mapping({"fleet": {"phones": 40, **fleet}}, "test")


def _purity(groups: np.ndarray, key: np.ndarray) -> float:
    """Share of phones whose group is their key's most common group."""
    same = 0
    for k in np.unique(key):
        same += Counter(groups[key == k].tolist()).most_common(1)[0][1]
    return same / len(key)


def test_availability_classes_get_exact_shares_and_their_own_process() -> None:
    fleet = build_fleet(_scenario(availability_classes=CLASSES), NAMES)
    assert Counter(p.availability_class for p in fleet.phones) == {"rare": 10, "always": 30}
    for phone in fleet.phones:
        expected = BernoulliOnline if phone.availability_class == "rare" else AlwaysOnline
        assert isinstance(fleet.availability(phone.phone_id), expected)


def test_without_classes_every_phone_is_in_the_class_named_after_the_model() -> None:
    fleet = build_fleet(_scenario(availability={"model": "markov"}), NAMES)
    assert {p.availability_class for p in fleet.phones} == {"markov"}


def test_full_correlation_puts_each_subjects_phones_in_one_class() -> None:
    """10 subjects x 4 phones, classes of 8 and 32 phones: every subject sits in one class."""
    key = np.repeat(np.arange(10), 4)
    classes = correlated_assignment((0.2, 0.8), key, 1.0, seed=3, purpose="classes")
    assert _purity(classes, key) == 1.0
    assert Counter(classes.tolist()) == {0: 8, 1: 32}


def test_strength_moves_assignment_from_random_to_the_data() -> None:
    """Purity (how well the data key predicts the class) grows with strength, over many seeds."""
    key = np.repeat(np.arange(20), 10)
    purity = {
        s: np.mean(
            [
                _purity(correlated_assignment((0.5, 0.5), key, s, seed, "tiers"), key)
                for seed in range(20)
            ]
        )
        for s in (0.0, 0.5, 1.0)
    }
    assert purity[0.0] < purity[0.5] < purity[1.0] == 1.0


def test_correlated_tiers_and_classes_share_the_data_order() -> None:
    """The first tier and the first class go to the same phones when both follow the data."""
    tiers = [
        {"name": "budget", "share": 0.25, "samples_per_second": 50, "down_mbps": 5, "up_mbps": 1},
        {
            "name": "flagship",
            "share": 0.75,
            "samples_per_second": 400,
            "down_mbps": 50,
            "up_mbps": 10,
        },
    ]
    scenario = _scenario(
        tiers=tiers, availability_classes=CLASSES, correlation={"by": "subject", "strength": 1}
    )
    fleet = build_fleet(scenario, NAMES, np.repeat(np.arange(10), 4))
    for phone in fleet.phones:
        assert (phone.tier == "budget") == (phone.availability_class == "rare")


def test_class_shares_must_sum_to_one() -> None:
    bad = [dict(CLASSES[0]), {**CLASSES[1], "share": 0.5}]
    with pytest.raises(ScenarioError, match=r"sum to 0\.75"):
        _scenario(availability_classes=bad)
