"""The baselines (FedAvg, FedProx, noise padding) train, differ where they should, and register."""

from __future__ import annotations

import typing

import numpy as np
import pytest
import torch
from algo_setting import Setting, strategy_for

from fedmobile_actors.algorithms.noise_padding import noise_fill
from fedmobile_actors.algorithms.registry import STRATEGIES
from fedmobile_actors.scenario.schema import AlgorithmName


def distance(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return float(sum(np.sum((a[k].astype(np.float64) - b[k]) ** 2) for k in a))


def test_every_algorithm_name_of_the_schema_is_registered() -> None:
    assert set(STRATEGIES) == set(typing.get_args(AlgorithmName))


@pytest.mark.parametrize("name", sorted(typing.get_args(AlgorithmName)))
def test_each_strategy_trains_and_changes_the_global_weights(setting: Setting, name: str) -> None:
    strategy = strategy_for(setting, name)
    state = strategy.initial_state()
    payload = strategy.payload(state)
    updates = [strategy.local_update(payload, setting.phones[i], i, 0, i) for i in range(2)]
    for u in updates:
        assert set(u.arrays) == set(strategy.update_shapes(payload))
    result = strategy.aggregate(state, updates, [1.0, 1.0])
    assert result.state.version == 1 and result.metrics["rejected"] == 0
    assert distance(result.state.arrays, state.arrays) > 0
    assert np.isfinite(strategy.evaluate(result.state, setting.split.test, setting.missing).loss)


def test_fedprox_stays_closer_to_the_global_model_than_fedavg(setting: Setting) -> None:
    avg = strategy_for(setting, "fedavg")
    prox = strategy_for(setting, "fedprox", mu=5.0)
    state = avg.initial_state()
    a = avg.local_update(state.arrays, setting.phones[0], 0, 0, 0)
    p = prox.local_update(state.arrays, setting.phones[0], 0, 0, 0)
    assert distance(p.arrays, state.arrays) < 0.8 * distance(a.arrays, state.arrays)


def test_fedprox_with_zero_mu_is_fedavg(setting: Setting) -> None:
    state = strategy_for(setting, "fedavg").initial_state()
    a = strategy_for(setting, "fedavg").local_update(state.arrays, setting.phones[1], 1, 0, 4)
    p = strategy_for(setting, "fedprox", mu=0.0).local_update(
        state.arrays, setting.phones[1], 1, 0, 4
    )
    assert all(a.arrays[k].tobytes() == p.arrays[k].tobytes() for k in a.arrays)


def test_noise_fill_touches_only_absent_rows_with_the_configured_spread() -> None:
    feats = {"acc": torch.ones(4000, 3)}
    present = {"acc": torch.arange(4000) % 2 == 0}
    out = noise_fill(2.0, torch.Generator().manual_seed(0))(feats, present, None)["acc"]
    assert torch.equal(out[::2], feats["acc"][::2])
    assert float(out[1::2].std()) == pytest.approx(2.0, rel=0.05)


def test_noise_padding_evaluation_is_repeatable(setting: Setting) -> None:
    strategy = strategy_for(setting, "noise_padding", noise_std=3.0)
    state = strategy.initial_state()
    first = strategy.evaluate(state, setting.split.test, setting.missing)
    assert strategy.evaluate(state, setting.split.test, setting.missing) == first


def test_fedavg_rejects_a_non_finite_update_and_counts_it(setting: Setting) -> None:
    strategy = strategy_for(setting, "fedavg")
    state = strategy.initial_state()
    good = strategy.local_update(state.arrays, setting.phones[0], 0, 0, 0)
    bad = strategy.local_update(state.arrays, setting.phones[1], 1, 0, 1)
    key = next(iter(bad.arrays))
    bad.arrays[key] = np.full_like(bad.arrays[key], np.inf)
    result = strategy.aggregate(state, [good, bad], [1.0, 1.0])
    assert result.metrics["rejected"] == 1
    assert all(result.state.arrays[k].tobytes() == good.arrays[k].tobytes() for k in good.arrays)
