"""Model kinds chosen by ``model.kind``: the contract, local BatchNorm statistics, keyed dropout,
and the check of what a strategy needs of its model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from algo_setting import SEED, TINY_MODEL, Setting, make_context

from fedmobile_actors.algorithms.fedavg import FedAvg
from fedmobile_actors.algorithms.models.base import get_arrays
from fedmobile_actors.algorithms.models.conv1d import Conv1dNet
from fedmobile_actors.algorithms.models.registry import MODEL_KINDS, ModelKind, build_model
from fedmobile_actors.algorithms.registry import check_model, make_strategy
from fedmobile_actors.cli.main import main
from fedmobile_actors.errors import ScenarioError
from fedmobile_actors.scenario.schema import AlgorithmConfig, ModelConfig

AUTHORS = ModelConfig(kind="authors_conv2d")


def fedavg_with(setting: Setting, model: ModelConfig) -> FedAvg:
    strategy = make_strategy(replace(make_context(setting, "fedavg"), model=model))
    assert isinstance(strategy, FedAvg)
    return strategy


def test_default_kind_is_the_conv1d_net() -> None:
    """``conv1d`` is the default and builds the same weights as the Conv1d net itself."""
    assert ModelConfig().kind == "conv1d"
    shapes = {"acc": (3, 16), "gyro": (3, 16)}
    built = get_arrays(build_model("conv1d", shapes, 4, TINY_MODEL, 5))
    torch.manual_seed(5)
    direct = get_arrays(Conv1dNet(shapes, 4, TINY_MODEL))
    assert built.keys() == direct.keys()
    assert all(np.array_equal(built[k], direct[k]) for k in built)


def test_authors_model_has_their_feature_size_and_local_batchnorm() -> None:
    """16 x (T-2) features per 3-channel modality (3168 for T=200), and the running statistics
    of its 4 BatchNorm layers per encoder are its local keys."""
    model = build_model("authors_conv2d", {"acc": (3, 200), "gyro": (3, 200)}, 12, AUTHORS, 0)
    assert model.feature_dims == {"acc": 3168, "gyro": 3168}
    assert model.head.in_features == 2 * 3168
    local = model.local_keys()
    assert len(local) == 2 * 4 * 3
    assert all(
        k.split(".")[-1] in {"running_mean", "running_var", "num_batches_tracked"} for k in local
    )
    feats = model.encode(
        {"acc": torch.zeros(2, 3, 200), "gyro": torch.zeros(2, 3, 200)},
        {"acc": torch.tensor([True, False]), "gyro": torch.tensor([True, True])},
    )
    assert feats["acc"].shape == (2, 3168) and bool((feats["acc"][1] == 0).all())


def test_mlp_encodes_each_modality_to_its_last_width() -> None:
    model = build_model("mlp", {"acc": (3, 16)}, 4, ModelConfig(kind="mlp", mlp_hidden=(10, 6)), 0)
    feats = model.encode({"acc": torch.ones(5, 3, 16)}, {"acc": torch.ones(5, dtype=torch.bool)})
    assert feats["acc"].shape == (5, 6) and model.classify(feats).shape == (5, 4)
    assert model.local_keys() == ()


def test_batchnorm_statistics_stay_on_the_phone(setting: Setting) -> None:
    """With the authors' model, FedAvg sends no BatchNorm statistics: the payload and the update
    lack them, the phone's state holds them, and each phone's differ."""
    strategy = fedavg_with(setting, AUTHORS)
    assert strategy.is_stateful()
    state = strategy.initial_state()
    assert not set(state.arrays) & strategy.local_keys
    a = strategy.local_update(state.arrays, setting.phones[0], 0, 0, 0)
    b = strategy.local_update(state.arrays, setting.phones[1], 1, 0, 1)
    assert set(a.arrays) == set(state.arrays)
    assert a.phone_state is not None and b.phone_state is not None
    assert set(a.phone_state) == strategy.local_keys
    key = next(k for k in strategy.local_keys if k.endswith("running_mean"))
    assert not np.array_equal(a.phone_state[key], b.phone_state[key])
    # Evaluating with a phone's statistics is not evaluating with the initial ones.
    own = strategy.evaluate(state, setting.split.test, setting.full, a.phone_state)
    initial = strategy.evaluate(state, setting.split.test, setting.full)
    assert own != initial


def test_pooled_evaluation_uses_the_mean_of_phones_statistics(setting: Setting) -> None:
    strategy = fedavg_with(setting, AUTHORS)
    state = strategy.initial_state()
    states = [
        strategy.local_update(state.arrays, setting.phones[p], p, 0, p).phone_state
        for p in range(2)
    ]
    pooled = strategy.pooled_phone_state(s for s in states if s is not None)
    assert pooled is not None
    for key, value in pooled.items():
        assert states[0] is not None and states[1] is not None
        np.testing.assert_allclose(value, (states[0][key] + states[1][key]) / 2, rtol=1e-6)
    assert strategy.pooled_phone_state([]) is None


def test_dropout_is_keyed_by_phone_and_task(setting: Setting) -> None:
    """The authors' model trains with dropout: the same (phone, task) gives the same bits, another
    task other bits, and torch's global generator is left as it was."""
    strategy = fedavg_with(setting, AUTHORS)
    payload = strategy.initial_state().arrays
    before = torch.get_rng_state()
    first = strategy.local_update(payload, setting.phones[2], 2, 0, 5)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(123)  # whatever the global generator holds
    again = strategy.local_update(payload, setting.phones[2], 2, 0, 5)
    other = strategy.local_update(payload, setting.phones[2], 2, 0, 6)
    assert all(np.array_equal(first.arrays[k], again.arrays[k]) for k in first.arrays)
    assert any(not np.array_equal(first.arrays[k], other.arrays[k]) for k in first.arrays)


def test_unknown_kind_is_one_line() -> None:
    with pytest.raises(ScenarioError, match=r"model\.kind: 'resnet' is not a model kind") as err:
        check_model(AlgorithmConfig(), ModelConfig(kind="resnet"))
    assert len(str(err.value).splitlines()) == 1


def test_a_model_lacking_what_the_strategy_needs_is_one_line(monkeypatch: Any) -> None:
    """FedMobile needs a linear head over per-modality slices; a kind without one is refused at
    validation, naming the kind, the missing capability and the strategy."""
    plain = ModelKind(Conv1dNet, frozenset({"modality_encoders"}), "test kind without head")
    monkeypatch.setitem(MODEL_KINDS, "fused", plain)
    check_model(AlgorithmConfig(name="fedavg"), ModelConfig(kind="fused"))  # FedAvg: fine
    with pytest.raises(ScenarioError) as err:
        check_model(AlgorithmConfig(name="fedmobile"), ModelConfig(kind="fused"))
    (line,) = str(err.value).splitlines()
    assert "'fused'" in line and "linear_head" in line and "'fedmobile'" in line


def test_validate_cli_refuses_an_unknown_kind(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "bad.yaml"
    raw = {"name": "bad", "model": {"kind": "resnet"}, "seed": SEED}
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.kind" in err[0]


def test_fedmobile_keeps_batchnorm_local_too(setting: Setting) -> None:
    """FedMobile on the authors' model: its payload (model + generator) lacks the BatchNorm
    statistics, its update returns them as phone state, and aggregation runs."""
    context = replace(make_context(setting, "fedmobile"), model=AUTHORS)
    strategy = make_strategy(context)
    assert isinstance(strategy, FedAvg) and strategy.is_stateful()
    state = strategy.initial_state()
    assert not set(state.arrays) & strategy.local_keys
    updates = [strategy.local_update(state.arrays, setting.phones[p], p, 0, p) for p in range(2)]
    assert all(
        u.phone_state is not None and set(u.phone_state) == strategy.local_keys for u in updates
    )
    result = strategy.aggregate(state, updates, [1.0, 1.0])
    assert result.state.version == 1 and set(result.state.arrays) == set(state.arrays)
