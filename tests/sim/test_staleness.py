"""Staleness weights: constant, polynomial (1+s)^-a, hinge (1 up to b, then 1/(a(s-b)+1))."""

import pytest

from fedmobile_actors.scenario.schema import RoundsConfig
from fedmobile_actors.sim.staleness import StalenessWeight


def test_constant_weight_ignores_staleness() -> None:
    assert [StalenessWeight("constant")(s) for s in (0, 3, 50)] == [1.0, 1.0, 1.0]


def test_polynomial_weight_is_one_over_root_of_one_plus_s_for_a_half() -> None:
    weight = StalenessWeight("polynomial", exponent=0.5)
    assert [weight(s) for s in (0, 3, 8)] == pytest.approx([1.0, 0.5, 1 / 3])


def test_hinge_weight_is_flat_to_the_hinge_then_decays() -> None:
    weight = StalenessWeight("hinge", exponent=0.5, hinge=2)
    assert [weight(s) for s in (0, 2, 3, 6)] == pytest.approx([1.0, 1.0, 1 / 1.5, 1 / 3])


def test_from_rounds_reads_the_scenario_knobs() -> None:
    rounds = RoundsConfig(staleness="hinge", staleness_exponent=2.0, staleness_hinge=1)
    assert StalenessWeight.from_rounds(rounds) == StalenessWeight("hinge", 2.0, 1)
    with pytest.raises(ValueError, match="negative"):
        StalenessWeight()(-1)
