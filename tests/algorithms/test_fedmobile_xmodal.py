"""The cross-modal FedMobile variant: its fill reads the available modality, its training never
sees the label in the head's input, and FedMobile's server rules still apply."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from algo_setting import Setting, strategy_for

from fedmobile_actors.algorithms.fedmobile_xmodal import (
    CrossModalGenerator,
    FedMobileXModal,
    cross_modal_distillation,
    cross_modal_fill,
)
from fedmobile_actors.algorithms.model import MultimodalNet, build_model
from fedmobile_actors.algorithms.strategy import ClientUpdate, GlobalState, Strategy
from fedmobile_actors.algorithms.training import LocalAdam
from fedmobile_actors.scenario.schema import FedMobileConfig

FAST = FedMobileConfig(probe_size=16, clusters=3)


def one_round(
    strategy: Strategy, setting: Setting, state: GlobalState, r: int = 0
) -> list[ClientUpdate]:
    payload = strategy.payload(state)
    return [
        strategy.local_update(payload, data, phone, state.version, 100 * r + phone)
        for phone, data in enumerate(setting.phones)
    ]


@pytest.fixture(scope="module")
def xmodal(setting: Setting) -> FedMobileXModal:
    strategy = strategy_for(setting, "fedmobile_xmodal", fedmobile=FAST)
    assert isinstance(strategy, FedMobileXModal)
    return strategy


def test_fill_depends_on_the_available_feature_and_keeps_present_rows() -> None:
    generator = CrossModalGenerator(noise_dim=4, hidden=8, dims={"acc": 5, "gyro": 5})
    fill = cross_modal_fill(generator, ("acc", "gyro"))
    present = {"acc": torch.tensor([True, True, True]), "gyro": torch.tensor([True, False, False])}
    acc = torch.tensor([[1.0] * 5, [2.0] * 5, [-3.0] * 5])
    gyro = torch.full((3, 5), 7.0)
    out = fill({"acc": acc, "gyro": gyro * present["gyro"][:, None]}, present, None)
    assert torch.equal(out["gyro"][0], gyro[0])  # a present slice is never replaced
    assert not torch.allclose(out["gyro"][1], out["gyro"][2])  # different acc, different fill
    assert torch.equal(out["acc"], acc)


def test_label_never_reaches_the_fill(setting: Setting, xmodal: FedMobileXModal) -> None:
    state = xmodal.initial_state()
    fill = xmodal.eval_fill(state)
    feats = {"acc": torch.randn(4, 8), "gyro": torch.zeros(4, 8)}
    present = {"acc": torch.ones(4, dtype=torch.bool), "gyro": torch.zeros(4, dtype=torch.bool)}
    a = fill(feats, present, torch.tensor([0, 1, 2, 3]))["gyro"]
    b = fill(feats, present, torch.tensor([3, 2, 1, 0]))["gyro"]
    assert torch.equal(a, b)


def test_distillation_loss_teaches_the_generator_the_cross_modal_map() -> None:
    torch.manual_seed(0)
    acc = torch.randn(256, 6)
    gyro = torch.tanh(acc @ torch.randn(6, 6))  # gyro features are a function of acc's
    feats = {"acc": acc, "gyro": gyro}
    present = {m: torch.ones(256, dtype=torch.bool) for m in feats}
    model = strategy_for_tiny_head()
    generator = CrossModalGenerator(noise_dim=2, hidden=32, dims={"acc": 6, "gyro": 6})
    optim = LocalAdam(list(generator.parameters()), lr=0.01)
    z = torch.zeros(256, 2)
    losses = []
    for _ in range(200):
        match, kd = cross_modal_distillation(model, generator, feats, present, z, ("gyro",), 2.0)
        optim.zero_grad()
        (match + kd).backward()
        optim.step()
        losses.append(float(match.detach()))
    assert losses[-1] < 0.2 * losses[0], (losses[0], losses[-1])


def strategy_for_tiny_head() -> MultimodalNet:
    from fedmobile_actors.scenario.schema import ModelConfig

    return build_model({"acc": (3, 8), "gyro": (3, 8)}, 3, ModelConfig(conv_channels=(6,)), 0)


def test_a_round_keeps_fedmobiles_server_rules(setting: Setting, xmodal: FedMobileXModal) -> None:
    state = xmodal.initial_state()
    for r in range(2):
        result = xmodal.aggregate(state, one_round(xmodal, setting, state, r), [1.0] * 6)
        state = result.state
        assert sum(result.metrics["shapley_weights"]) == pytest.approx(1.0)
        assert result.metrics["clusters"] == len(result.metrics["cluster_sizes"]) >= 1
        assert len(result.metrics["shapley_values"]) == result.metrics["clusters"]
        assert np.isfinite(result.metrics["fill_error"])


def test_phone_rerun_gives_the_same_bits(setting: Setting, xmodal: FedMobileXModal) -> None:
    state = xmodal.initial_state()
    payload = xmodal.payload(state)
    a = xmodal.local_update(payload, setting.phones[2], 2, 0, 5)
    xmodal.local_update(payload, setting.phones[0], 0, 0, 9)
    b = xmodal.local_update(payload, setting.phones[2], 2, 0, 5)
    assert all(a.arrays[k].tobytes() == b.arrays[k].tobytes() for k in a.arrays)


def test_without_a_proxy_set_clusters_weigh_their_mass(setting: Setting) -> None:
    strategy = strategy_for(setting, "fedmobile_xmodal", fedmobile=FAST, with_proxy=False)
    state = strategy.initial_state()
    result = strategy.aggregate(state, one_round(strategy, setting, state), [1.0] * 6)
    assert result.metrics["shapley_values"] == []
    assert sum(result.metrics["shapley_weights"]) == pytest.approx(1.0)
    assert np.isnan(result.metrics["fill_error"])
