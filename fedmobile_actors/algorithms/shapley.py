"""Shapley values of a few players under any utility, and the weights FedMobile derives from them.

Why generic over a utility callable: the same code scores generator clusters in a run and toy
games in tests, where the axioms (efficiency, symmetry, null player) can be checked exactly.
Players are 0..n-1; a coalition is the sorted tuple of its members. Every coalition's utility is
computed at most once (memoised by bitmask), because in FedMobile one evaluation means averaging a
generator and scoring it on the proxy set.

Exact values enumerate all 2^n coalitions (n <= ``exact_max``, about 10); above that, Monte Carlo
permutation sampling (Castro et al. 2009) with antithetic pairs: each sampled order is followed by
its reverse, which cancels much of the variance for the same number of utility calls.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

#: utility(coalition) -> value; the coalition is a sorted tuple of player indices.
Utility = Callable[[tuple[int, ...]], float]


def _members(mask: int, players: int) -> tuple[int, ...]:
    return tuple(i for i in range(players) if mask >> i & 1)


class _Memo:
    """Utility values by coalition bitmask, each computed once."""

    def __init__(self, players: int, utility: Utility) -> None:
        self.players = players
        self.utility = utility
        self.values: dict[int, float] = {}

    def __call__(self, mask: int) -> float:
        if mask not in self.values:
            self.values[mask] = float(self.utility(_members(mask, self.players)))
        return self.values[mask]


def exact_shapley(players: int, utility: Utility) -> np.ndarray:
    """phi_i = sum over S not containing i of |S|!(n-|S|-1)!/n! (v(S + i) - v(S)); (n,) float64."""
    if players < 1:
        return np.zeros(0)
    memo = _Memo(players, utility)
    masks = np.arange(1 << players, dtype=np.int64)
    values = np.array([memo(int(m)) for m in masks], dtype=np.float64)  # (2^n,)
    sizes = np.array([int(m).bit_count() for m in masks], dtype=np.int64)
    factor = np.array(
        [
            math.factorial(s) * math.factorial(players - s - 1) / math.factorial(players)
            for s in range(players)
        ]
    )  # (n,) weight of a coalition of size s that lacks the player
    phi = np.zeros(players)
    for i in range(players):
        bit = np.int64(1 << i)
        without = masks[(masks & bit) == 0]
        phi[i] = np.sum(factor[sizes[without]] * (values[without | bit] - values[without]))
    return phi


def monte_carlo_shapley(
    players: int, utility: Utility, permutations: int, gen: np.random.Generator
) -> np.ndarray:
    """Mean marginal contribution over ``permutations`` orders (antithetic pairs); (n,) float64.

    Each order's marginals sum to v(all) - v(empty), so the estimate is efficient exactly.
    """
    if players < 1:
        return np.zeros(0)
    memo = _Memo(players, utility)
    phi = np.zeros(players)
    order = np.arange(players)
    for p in range(permutations):
        order = gen.permutation(players) if p % 2 == 0 else order[::-1]
        mask, before = 0, memo(0)
        for i in order:
            mask |= 1 << int(i)
            after = memo(mask)
            phi[i] += after - before
            before = after
    return phi / permutations


def shapley_values(
    players: int,
    utility: Utility,
    exact_max: int,
    permutations: int,
    gen: np.random.Generator,
) -> np.ndarray:
    """Exact up to ``exact_max`` players, Monte Carlo above."""
    if players <= exact_max:
        return exact_shapley(players, utility)
    return monte_carlo_shapley(players, utility, permutations, gen)


def shapley_weights(values: np.ndarray) -> np.ndarray:
    """Positive part of the values, normalised to sum 1; uniform when none is positive.

    Why the positive part: a cluster whose generator makes the global model worse should get no
    say, not a negative one (a negative weight would extrapolate away from it).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values
    positive = np.where(np.isfinite(values), np.maximum(values, 0.0), 0.0)
    total = positive.sum()
    if total <= 0:
        return np.full(values.shape, 1.0 / values.size)
    return positive / total
