"""Self-distillation into the missing-modality path (``algorithm.missing_distill``): off by
default and then free; on, it uses only the complete rows, teaches the path the missing rows
take, and works for the FedAvg family, FedMobile and its cross-modal variant."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from algo_setting import Setting, strategy_for

from fedmobile_actors.algorithms.model import build_model
from fedmobile_actors.algorithms.training import (
    MissingDistillation,
    missing_distillation,
    zero_fill,
)
from fedmobile_actors.scenario.schema import (
    AlgorithmConfig,
    FedMobileConfig,
    MissingDistillConfig,
    ModelConfig,
)

ON = MissingDistillConfig(weight=1.0, temperature=2.0)
FAST = FedMobileConfig(probe_size=16, clusters=3, generator_steps=5)


def _model() -> torch.nn.Module:
    shapes = {"acc": (3, 16), "gyro": (3, 16)}
    return build_model(shapes, 4, ModelConfig(conv_channels=(8,), kernel_size=3), seed=1)


def test_off_by_default_and_when_nothing_is_missing() -> None:
    present = {"acc": np.ones(5, dtype=bool), "gyro": np.array([1, 0, 1, 1, 1], dtype=bool)}
    assert missing_distillation(AlgorithmConfig(), ("acc", "gyro"), present) is None
    on = AlgorithmConfig(missing_distill=ON)
    complete = {m: np.ones(5, dtype=bool) for m in ("acc", "gyro")}
    assert missing_distillation(on, ("acc", "gyro"), complete) is None
    assert missing_distillation(on, ("acc",), {"acc": present["acc"]}) is None
    hidden = missing_distillation(on, ("acc", "gyro"), present)
    assert hidden is not None and hidden.hidden == ("gyro",)
    # Training-time dropout that marks rows absent counts as missing too.
    by_dropout = missing_distillation(on, ("acc", "gyro"), complete, ["acc"])
    assert by_dropout is not None and by_dropout.hidden == ("acc",)


def test_only_complete_rows_teach_and_gradient_reaches_the_available_encoder() -> None:
    model = _model()
    inputs = {m: torch.randn(6, 3, 16) for m in ("acc", "gyro")}
    present = {
        "acc": torch.ones(6, dtype=torch.bool),
        "gyro": torch.tensor([True, True, False, False, False, False]),
    }
    feats = model.encode(inputs, present)
    distill = MissingDistillation(weight=1.0, temperature=2.0, hidden=("gyro",))
    loss = distill.loss(model, feats, present, zero_fill)
    assert float(loss.detach()) > 0
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert any(g is not None and bool(g.abs().sum() > 0) for n, g in grads.items() if "acc" in n)
    # The teacher is detached: the hidden modality's encoder gets no gradient from the loss.
    assert all(g is None or float(g.abs().sum()) == 0 for n, g in grads.items() if "gyro" in n)
    # Rows without gyro do not enter: changing them changes nothing.
    other = {m: t.clone() for m, t in inputs.items()}
    other["acc"][2:] = torch.randn(4, 3, 16)
    again = distill.loss(model, model.encode(other, present), present, zero_fill)
    assert torch.equal(loss.detach(), again.detach())


def test_no_complete_row_gives_zero() -> None:
    model = _model()
    present = {"acc": torch.ones(4, dtype=torch.bool), "gyro": torch.zeros(4, dtype=torch.bool)}
    feats = model.encode({m: torch.randn(4, 3, 16) for m in ("acc", "gyro")}, present)
    distill = MissingDistillation(weight=1.0, temperature=2.0, hidden=("gyro",))
    assert float(distill.loss(model, feats, present, zero_fill)) == 0.0


def test_weight_scales_the_loss() -> None:
    model = _model()
    present = {"acc": torch.ones(4, dtype=torch.bool), "gyro": torch.ones(4, dtype=torch.bool)}
    feats = model.encode({m: torch.randn(4, 3, 16) for m in ("acc", "gyro")}, present)
    one = MissingDistillation(1.0, 2.0, ("gyro",)).loss(model, feats, present, zero_fill)
    three = MissingDistillation(3.0, 2.0, ("gyro",)).loss(model, feats, present, zero_fill)
    assert torch.allclose(three, 3 * one)


@pytest.mark.parametrize("name", ["fedavg", "fedprox", "fedmobile", "fedmobile_xmodal"])
def test_strategies_train_with_it_deterministically(setting: Setting, name: str) -> None:
    """On, the update differs from the plain one and is the same on a re-run."""
    kwargs: dict[str, object] = {"fedmobile": FAST}
    plain = strategy_for(setting, name, **kwargs)
    distilled = strategy_for(setting, name, missing_distill=ON, **kwargs)
    state = plain.initial_state()
    data = setting.phones[0]

    def update(strategy: object) -> dict[str, np.ndarray]:
        payload = strategy.payload(state)  # type: ignore[attr-defined]
        out = strategy.local_update(payload, data, 0, 0, 3)  # type: ignore[attr-defined]
        return out.arrays  # type: ignore[no-any-return]

    a, b, c = update(plain), update(distilled), update(distilled)
    assert any(not np.array_equal(a[k], b[k]) for k in a)
    assert all(np.array_equal(b[k], c[k]) for k in b)
