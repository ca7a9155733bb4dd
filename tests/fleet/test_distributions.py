"""Draws from the scenario's distributions."""

import numpy as np

from fedmobile_actors.fleet.distributions import draw, draw_one
from fedmobile_actors.scenario.schema import Constant, LogNormal, Uniform


def test_constant_draws_the_value() -> None:
    assert np.array_equal(draw(Constant(value=3.5), np.random.default_rng(0), 4), [3.5] * 4)


def test_uniform_draws_stay_within_bounds_and_spread() -> None:
    values = draw(Uniform(low=2.0, high=5.0), np.random.default_rng(0), 10_000)
    assert values.min() >= 2.0 and values.max() < 5.0
    assert abs(values.mean() - 3.5) < 0.05


def test_lognormal_has_the_given_median_and_log_sigma() -> None:
    values = draw(LogNormal(median=40.0, sigma=0.5), np.random.default_rng(0), 20_000)
    assert abs(np.median(values) / 40.0 - 1.0) < 0.02
    assert abs(np.log(values).std() - 0.5) < 0.01


def test_draw_one_is_the_first_value_of_the_stream() -> None:
    dist = LogNormal(median=1.0, sigma=0.3)
    assert draw_one(dist, np.random.default_rng(7)) == draw(dist, np.random.default_rng(7), 5)[0]
