"""``modalities.training_dropout`` reaches every FedAvg-family strategy's local training."""

from __future__ import annotations

import dataclasses

import numpy as np
from algo_setting import Setting, make_context

from fedmobile_actors.algorithms.registry import make_strategy
from fedmobile_actors.scenario.schema import StepDropout


def update_arrays(setting: Setting, name: str, rate: float | None, task: int = 0) -> dict:
    context = make_context(setting, name)
    if rate is not None:
        rules = (StepDropout(modality="acc", rate=rate),)
        context = dataclasses.replace(context, step_dropout=rules)
    strategy = make_strategy(context)
    payload = strategy.payload(strategy.initial_state())
    return strategy.local_update(payload, setting.phones[0], 0, 0, task).arrays


def same(a: dict, b: dict) -> bool:
    return all(np.array_equal(a[k], b[k]) for k in a)


def test_dropout_changes_training_and_is_keyed_by_task(setting: Setting) -> None:
    for name in ("fedavg", "fedmobile"):
        plain = update_arrays(setting, name, None)
        dropped = update_arrays(setting, name, 0.8)
        assert not same(plain, dropped)
        assert same(dropped, update_arrays(setting, name, 0.8))
        assert not same(dropped, update_arrays(setting, name, 0.8, task=1))


def test_rate_zero_is_no_dropout(setting: Setting) -> None:
    assert same(update_arrays(setting, "fedavg", None), update_arrays(setting, "fedavg", 0.0))
