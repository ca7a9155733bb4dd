"""Shapley values on toy games: the axioms hold exactly, Monte Carlo lands near exact."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fedmobile_actors.algorithms.shapley import (
    Utility,
    exact_shapley,
    monte_carlo_shapley,
    shapley_values,
    shapley_weights,
)
from fedmobile_actors.seeding import rng


def random_game(players: int, seed: int) -> tuple[Utility, np.ndarray]:
    """A utility with an arbitrary value for every coalition (no structure to lean on)."""
    table = rng(seed, 0, 0, "toy-game").normal(size=1 << players)
    table[0] = 0.3

    def utility(members: tuple[int, ...]) -> float:
        return float(table[sum(1 << i for i in members)])

    return utility, table


def test_efficiency_values_sum_to_grand_coalition_minus_empty() -> None:
    utility, table = random_game(6, 1)
    phi = exact_shapley(6, utility)
    assert phi.sum() == pytest.approx(table[-1] - table[0], abs=1e-12)


def test_symmetric_players_get_equal_values() -> None:
    def utility(members: tuple[int, ...]) -> float:
        s = set(members)
        return 2.0 * len(s & {0, 1}) + 5.0 * (2 in s) + 1.5 * ({0, 1} <= s)

    phi = exact_shapley(4, utility)
    assert phi[0] == pytest.approx(phi[1], abs=1e-12)
    assert phi[0] == pytest.approx(2.0 + 0.75)


def test_null_player_gets_zero() -> None:
    def utility(members: tuple[int, ...]) -> float:
        s = set(members) - {3}  # player 3 never changes anything
        return float(len(s) ** 2)

    assert exact_shapley(5, utility)[3] == pytest.approx(0.0, abs=1e-12)


def test_additive_game_gives_each_player_its_own_value() -> None:
    own = np.array([0.5, -1.0, 2.0])
    phi = exact_shapley(3, lambda members: float(own[list(members)].sum()))
    np.testing.assert_allclose(phi, own, atol=1e-12)


def test_each_coalition_is_evaluated_once() -> None:
    calls: list[tuple[int, ...]] = []

    def utility(members: tuple[int, ...]) -> float:
        calls.append(members)
        return float(len(members))

    exact_shapley(5, utility)
    assert len(calls) == 32 and len(set(calls)) == 32


def test_monte_carlo_is_close_to_exact_and_exactly_efficient() -> None:
    utility, table = random_game(7, 2)
    exact = exact_shapley(7, utility)
    mc = monte_carlo_shapley(7, utility, 2000, rng(0, -1, 0, "mc"))
    assert mc.sum() == pytest.approx(table[-1] - table[0], abs=1e-9)
    assert np.abs(mc - exact).max() < 0.1 * np.abs(table).max()


def test_monte_carlo_is_deterministic_under_a_fixed_seed() -> None:
    utility, _ = random_game(6, 3)
    a = monte_carlo_shapley(6, utility, 50, rng(5, -1, 2, "shapley"))
    b = monte_carlo_shapley(6, utility, 50, rng(5, -1, 2, "shapley"))
    assert a.tobytes() == b.tobytes()


def test_dispatch_uses_exact_up_to_the_limit_and_monte_carlo_above() -> None:
    utility, _ = random_game(4, 4)
    exact = exact_shapley(4, utility)
    assert shapley_values(4, utility, 4, 10, rng(0, -1, 0, "s")).tobytes() == exact.tobytes()
    mc = shapley_values(4, utility, 3, 10, rng(0, -1, 0, "s"))
    assert mc.tobytes() != exact.tobytes()


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.2, -0.1, 0.6], [0.25, 0.0, 0.75]),
        ([-0.2, -0.1, 0.0], [1 / 3, 1 / 3, 1 / 3]),
        ([0.0, np.nan, 1.0], [0.0, 0.0, 1.0]),
    ],
)
def test_weights_are_positive_part_normalised_or_uniform(
    values: list[float], expected: list[float]
) -> None:
    np.testing.assert_allclose(shapley_weights(np.array(values)), expected)


def test_one_player_gets_the_whole_gain() -> None:
    for permutations in (1, 3):
        mc = monte_carlo_shapley(1, lambda m: 0.9 if m else 0.25, permutations, rng(0, -1, 0, "s"))
        assert mc[0] == pytest.approx(0.65)
    assert list(itertools.chain(exact_shapley(1, lambda m: 0.9 if m else 0.25))) == [
        pytest.approx(0.65)
    ]
