"""The conditional generator: it learns from real features, and fills only what is missing."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from algo_setting import TINY_MODEL, Setting

import fedmobile_actors.algorithms.generator as generator_module
from fedmobile_actors.algorithms.generator import (
    FeatureGenerator,
    build_generator,
    class_prototypes,
    probability_fill,
    probe_batch,
    real_features,
    train_generator,
    warn_unlearnable,
)
from fedmobile_actors.algorithms.model import MultimodalNet, build_model
from fedmobile_actors.algorithms.training import train_local
from fedmobile_actors.scenario.schema import AlgorithmConfig, FedMobileConfig


def trained_pair(
    setting: Setting, config: FedMobileConfig
) -> tuple[MultimodalNet, FeatureGenerator]:
    shapes, k = setting.split.train.shapes, setting.split.train.num_classes
    model = build_model(shapes, k, TINY_MODEL, seed=1)
    train_local(model, setting.phones[0], AlgorithmConfig(lr=0.1), torch.Generator().manual_seed(0))
    return model, build_generator(model, config, seed=2)


def test_distillation_loss_falls_over_local_steps(setting: Setting) -> None:
    config = FedMobileConfig(generator_steps=60, generator_lr=0.01)
    model, generator = trained_pair(setting, config)
    losses = train_generator(
        generator,
        model,
        setting.phones[0],
        config,
        ("acc", "gyro"),
        torch.Generator().manual_seed(3),
        batch_size=32,
    )
    assert len(losses) == 60
    # The feature-matching MSE has a floor (the real features' spread within a class).
    assert np.mean(losses[-10:]) < 0.85 * np.mean(losses[:10])


def test_generator_training_leaves_the_model_untouched(setting: Setting) -> None:
    config = FedMobileConfig(generator_steps=5)
    model, generator = trained_pair(setting, config)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    gen_before = [p.clone() for p in generator.parameters()]
    train_generator(
        generator,
        model,
        setting.phones[0],
        config,
        ("acc", "gyro"),
        torch.Generator().manual_seed(0),
        16,
    )
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.requires_grad for p in model.parameters())
    assert any(
        not torch.equal(a, b) for a, b in zip(gen_before, generator.parameters(), strict=True)
    )


def feats_and_masks() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    feats = {"acc": torch.ones(4, 3), "gyro": torch.full((4, 2), 7.0)}
    present = {
        "acc": torch.tensor([True, True, True, True]),
        "gyro": torch.tensor([True, False, True, False]),
    }
    return feats, present


def test_fill_never_sees_the_labels_and_passes_no_gradient_through_its_mixture() -> None:
    """The training fill is the test fill: labels cannot leak into the head through it."""
    model = build_model({"acc": (3, 8), "gyro": (3, 8)}, 3, TINY_MODEL, 0)
    generator = build_generator(model, FedMobileConfig(noise_dim=4), seed=0)
    protos = class_prototypes(generator, *probe_batch(0, 3, 12, 4))
    fill = probability_fill(model, protos, ("acc", "gyro"))
    present = {"acc": torch.tensor([True, True]), "gyro": torch.tensor([True, False])}
    acc = torch.rand(2, 8, requires_grad=True)
    feats = {"acc": acc, "gyro": torch.rand(2, 8)}
    out = fill(feats, present, torch.tensor([0, 1]))
    assert torch.equal(out["gyro"], fill(feats, present, torch.tensor([2, 2]))["gyro"])
    assert torch.equal(out["gyro"], fill(feats, present, None)["gyro"])
    assert acc.requires_grad and not out["gyro"].requires_grad  # no path from the mixture


def test_fill_leaves_an_unlearnable_modality_at_zero() -> None:
    model = build_model({"acc": (3, 8), "gyro": (3, 8)}, 3, TINY_MODEL, 0)
    generator = build_generator(model, FedMobileConfig(noise_dim=4), seed=0)
    protos = class_prototypes(generator, *probe_batch(0, 3, 12, 4))
    feats = {"acc": torch.ones(2, 8), "gyro": torch.zeros(2, 8)}
    present = {"acc": torch.tensor([True, True]), "gyro": torch.tensor([False, False])}
    out = probability_fill(model, protos, ("acc",))(feats, present, torch.tensor([0, 1]))
    assert torch.equal(out["gyro"], torch.zeros(2, 8))


def test_distillation_pins_the_generated_level_to_the_real_features(setting: Setting) -> None:
    """The softmax KL ignores a row's level; the feature-matching term brings it to the real one."""
    config = FedMobileConfig(generator_steps=60, generator_lr=0.01)
    model, generator = trained_pair(setting, config)
    real, batches = real_features(model, setting.phones[0])
    rows = batches.present["gyro"]

    def level_gap() -> float:
        with torch.no_grad():
            z = torch.randn((int(rows.sum()), generator.noise_dim), generator=torch.Generator())
            gen = generator.split(generator(z, batches.labels[rows]))["gyro"]
        return float((gen.mean() - real["gyro"][rows].mean()).abs())

    before = level_gap()
    train_generator(
        generator,
        model,
        setting.phones[0],
        config,
        ("acc", "gyro"),
        torch.Generator().manual_seed(3),
        batch_size=32,
    )
    assert level_gap() < 0.3 * before, (before, level_gap())


def test_probability_fill_mixes_class_prototypes_by_first_pass_probabilities() -> None:
    model = build_model({"acc": (3, 8), "gyro": (3, 8)}, 3, TINY_MODEL, 0)
    generator = build_generator(model, FedMobileConfig(noise_dim=4), seed=0)
    protos = class_prototypes(generator, *probe_batch(0, 3, 12, 4))
    assert protos["gyro"].shape == (3, 8)
    present = {"acc": torch.tensor([True, True]), "gyro": torch.tensor([True, False])}
    feats = {"acc": torch.rand(2, 8), "gyro": torch.rand(2, 8)}
    out = probability_fill(model, protos, ("acc", "gyro"))(feats, present, None)
    assert torch.equal(out["gyro"][0], feats["gyro"][0])
    first = {"acc": feats["acc"], "gyro": protos["gyro"].mean(0, keepdim=True).expand(2, 8)}
    probs = torch.softmax(model.classify(first), dim=1)
    torch.testing.assert_close(out["gyro"][1], (probs @ protos["gyro"])[1])


def test_unlearnable_modalities_warn_once_and_are_returned() -> None:
    with pytest.warns(RuntimeWarning, match="zz_missing are missing on every phone"):
        assert warn_unlearnable(("acc", "zz_missing"), ("acc",)) == ("zz_missing",)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_unlearnable(("acc", "zz_missing"), ("acc",))  # second time: silent


def test_generator_training_is_unchanged_by_the_hand_written_adam(
    setting: Setting, monkeypatch: pytest.MonkeyPatch
) -> None:
    """train_generator gives the same losses and weights, bit for bit, as with torch's Adam."""
    config = FedMobileConfig(generator_steps=8)
    runs = []
    for optimizer in ("ours", "torch"):
        if optimizer == "torch":
            monkeypatch.setattr(
                generator_module,
                "LocalAdam",
                lambda params, lr: torch.optim.Adam(params, lr=lr),
            )
        model, generator = trained_pair(setting, config)
        losses = train_generator(
            generator, model, setting.phones[0], config, ("acc", "gyro"),
            torch.Generator().manual_seed(5), 16,
        )  # fmt: skip
        runs.append((losses, [p.detach().clone() for p in generator.parameters()]))
    (losses_ours, params_ours), (losses_torch, params_torch) = runs
    assert losses_ours == losses_torch
    assert all(torch.equal(a, b) for a, b in zip(params_ours, params_torch, strict=True))
