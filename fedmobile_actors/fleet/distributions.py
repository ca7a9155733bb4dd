"""Draws from the scenario's distributions (constant, uniform, log-normal).

Why one function: tiers, slowdowns and anything else a scenario parameterises by a distribution
draw through here, vectorised, so a 5,000-phone fleet is a handful of numpy calls. The generator
is always passed in: which stream a draw comes from is the caller's decision (see seeding.py).
"""

from __future__ import annotations

import numpy as np

from fedmobile_actors.scenario.schema import Constant, LogNormal, Uniform


def draw(dist: Constant | Uniform | LogNormal, gen: np.random.Generator, size: int) -> np.ndarray:
    """``size`` independent values (float64 array) from ``dist``.

    Log-normal is parameterised by its median: ``median * exp(sigma * N(0, 1))``.
    """
    if isinstance(dist, Constant):
        return np.full(size, float(dist.value))
    if isinstance(dist, Uniform):
        return gen.uniform(dist.low, dist.high, size)
    if isinstance(dist, LogNormal):
        return dist.median * np.exp(dist.sigma * gen.standard_normal(size))
    raise TypeError(f"unknown distribution {dist!r}")


def draw_one(dist: Constant | Uniform | LogNormal, gen: np.random.Generator) -> float:
    """One value from ``dist`` (the first of the stream ``draw`` would produce)."""
    return float(draw(dist, gen, 1)[0])
