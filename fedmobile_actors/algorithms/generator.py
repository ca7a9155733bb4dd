"""FedMobile's conditional feature generator: G(z, y) -> one feature slice per modality.

The generator lives in the shared latent space of the local model (the encoders' outputs), so a
sample that lacks modality m can borrow a plausible m-feature for its class instead of a zero. It
is trained on phones that do have m, by distillation from their real features:

    loss = kd_weight * T^2 * KL(softmax(real_m / T) || softmax(G(z, y)_m / T))   (present rows)
         + feature_match_weight * MSE(G(z, y)_m, real_m)                          (present rows)
         + ce_weight * CE(head(G(z, y)), y)

The public code builds the generator's optimiser but never steps it; this project does (DESIGN.md).
The MSE term is ours: softmax is shift-invariant, so the KL alone leaves each generated row's level
free, and the head saw fills drift from round to round (docs/algorithm.md, "Two deviations").
Fills, in training and at test alike: the class-probability-weighted mean generated slice (class
prototypes), probabilities from a first pass on the sample's available modalities. DESIGN.md's
training fill G(z, y_true) leaked the label into the head; docs/algorithm.md gives the evidence.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Mapping
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fedmobile_actors.algorithms.model import MultimodalNet
from fedmobile_actors.algorithms.training import Batchable, Features, Fill, LocalAdam
from fedmobile_actors.data.dataset import LocalData
from fedmobile_actors.scenario.schema import FedMobileConfig
from fedmobile_actors.seeding import SERVER, rng

#: Prefix of the generator's arrays in payloads and updates (the model's keys carry none).
GEN_PREFIX = "generator/"

#: Weight of the feature-matching MSE in the generator's loss (pins the level the KL leaves free).

_warned_unlearnable: set[tuple[str, ...]] = set()


class FeatureGenerator(nn.Module):
    """MLP over [z, one-hot y] -> concatenated per-modality features (B, sum F_m).

    No batch norm: the state is parameters only, so averaging generators is averaging weights.
    """

    def __init__(
        self, noise_dim: int, num_classes: int, hidden: int, feature_dims: Mapping[str, int]
    ) -> None:
        super().__init__()
        self.noise_dim = noise_dim
        self.num_classes = num_classes
        self.feature_dims = dict(feature_dims)
        self.net = nn.Sequential(
            nn.Linear(noise_dim + num_classes, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, sum(self.feature_dims.values())),
        )

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(y, self.num_classes).to(z.dtype)  # (B, K)
        return self.net(torch.cat([z, onehot], dim=1))  # (B, F)

    def split(self, out: torch.Tensor) -> Features:
        """(B, F) -> {modality: (B, F_m)} in the model's modality order."""
        parts = torch.split(out, list(self.feature_dims.values()), dim=1)
        return dict(zip(self.feature_dims, parts, strict=True))


def feature_dims(model: MultimodalNet) -> dict[str, int]:
    """Width of each modality's feature slice, in the model's order (typed for mypy)."""
    return {m: int(cast(int, d)) for m, d in model.feature_dims.items()}


def build_generator(model: MultimodalNet, config: FedMobileConfig, seed: int) -> FeatureGenerator:
    """A generator matching ``model``'s feature slices; initial weights from ``seed`` alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return FeatureGenerator(
            config.noise_dim, model.num_classes, config.generator_hidden, feature_dims(model)
        )


def warn_unlearnable(modalities: Collection[str], learnable: Collection[str]) -> tuple[str, ...]:
    """Modalities no phone has: warn once per process (no generator can learn them) and return
    them; strategies zero-fill these slices and the run goes on."""
    missing = tuple(m for m in modalities if m not in learnable)
    if missing and missing not in _warned_unlearnable:
        _warned_unlearnable.add(missing)
        warnings.warn(
            f"modalities {', '.join(missing)} are missing on every phone: no generator can learn "
            "them, so FedMobile zero-fills them",
            RuntimeWarning,
            stacklevel=2,
        )
    return missing


def _zero_unlearnable(slices: Features, learnable: Collection[str]) -> Features:
    return {m: s if m in learnable else torch.zeros_like(s) for m, s in slices.items()}


@torch.no_grad()
def class_prototypes(
    generator: FeatureGenerator, z: torch.Tensor, y: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Mean generated slice per class over a probe batch: {modality: (K, F_m)}."""
    out = generator(z, y)  # (P, F)
    onehot = F.one_hot(y, generator.num_classes).to(out.dtype)  # (P, K)
    counts = onehot.sum(dim=0).clamp(min=1.0)[:, None]  # (K, 1)
    return generator.split(onehot.T @ out / counts)


def probability_fill(
    model: MultimodalNet, prototypes: Mapping[str, torch.Tensor], learnable: Collection[str]
) -> Fill:
    """The fill: sum_k p(k | available modalities) * prototype_k for each absent slice.

    Used in local training as well as at test, so the head is trained on exactly the input it will
    be tested on and never sees a slice that carries the true label. The probabilities carry no
    gradient: the first pass only chooses the mixture.

    The first pass fills absent slices with the mean prototype (the class-uninformative generated
    feature), not zeros: a head trained on filled slices has rarely seen a zero slice, so a zero
    first pass would be out of distribution.
    """

    def fill(
        feats: Features, present: Mapping[str, torch.Tensor], labels: torch.Tensor | None
    ) -> Features:
        absent = [m for m in feats if m in learnable and not bool(present[m].all())]
        if not absent:
            return feats
        neutral = dict(feats)
        for m in absent:
            mean = prototypes[m].mean(dim=0, keepdim=True)  # (1, F_m)
            neutral[m] = torch.where(present[m][:, None], feats[m], mean)
        probs = torch.softmax(model.classify(neutral), dim=1).detach()  # (B, K) first pass
        out = dict(feats)
        for m in absent:
            out[m] = torch.where(present[m][:, None], feats[m], probs @ prototypes[m])
        return out

    return fill


@torch.no_grad()
def real_features(model: MultimodalNet, data: LocalData) -> tuple[Features, Batchable]:
    """The (trained) encoders' features of a phone's whole shard, computed once per task."""
    batches = Batchable.of(data.dataset, data.present)
    model.eval()
    return model.encode(batches.inputs, batches.present), batches


def distillation_loss(
    generator: FeatureGenerator,
    model: MultimodalNet,
    real: Features,
    present: Mapping[str, torch.Tensor],
    labels: torch.Tensor,
    z: torch.Tensor,
    config: FedMobileConfig,
    learnable: Collection[str],
) -> torch.Tensor:
    """kd_weight * T^2 * KL(real || generated) + feature_match_weight * MSE(generated, real), both
    on present rows, + ce_weight * CE(head(generated))."""
    t = config.temperature
    generated = _zero_unlearnable(generator.split(generator(z, labels)), learnable)
    kd = z.new_zeros(())
    match = z.new_zeros(())
    for m in generated:
        rows = present[m]
        if m not in learnable or not bool(rows.any()):
            continue
        log_q = F.log_softmax(generated[m][rows] / t, dim=1)
        log_p = F.log_softmax(real[m][rows] / t, dim=1)
        kd = kd + F.kl_div(log_q, log_p, log_target=True, reduction="batchmean") * t * t
        match = match + F.mse_loss(generated[m][rows], real[m][rows])
    ce = F.cross_entropy(model.classify(generated), labels)
    return config.kd_weight * kd + config.feature_match_weight * match + config.ce_weight * ce


def train_generator(
    generator: FeatureGenerator,
    model: MultimodalNet,
    data: LocalData,
    config: FedMobileConfig,
    learnable: Collection[str],
    rng: torch.Generator,
    batch_size: int,
) -> list[float]:
    """``config.generator_steps`` Adam steps on the distillation loss; the model stays frozen.

    Returns the loss of every step (the caller reports first and last). Real features are
    computed once, so each step costs one small MLP pass, not an encoder pass.
    """
    if config.generator_steps == 0 or len(data) == 0:
        return []
    real, batches = real_features(model, data)
    flags = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    generator.train()
    optim = LocalAdam(list(generator.parameters()), lr=config.generator_lr)
    losses = []
    n = len(batches)
    try:
        for _step in range(config.generator_steps):
            index = torch.randint(0, n, (min(batch_size, n),), generator=rng)
            z = torch.randn((len(index), generator.noise_dim), generator=rng)
            loss = distillation_loss(
                generator,
                model,
                {m: f[index] for m, f in real.items()},
                {m: p[index] for m, p in batches.present.items()},
                batches.labels[index],
                z,
                config,
                learnable,
            )
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            losses.append(float(loss.detach()))
    finally:
        for p, flag in zip(model.parameters(), flags, strict=True):
            p.requires_grad_(flag)
    return losses


def probe_batch(
    seed: int, num_classes: int, probe_size: int, noise_dim: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The server's fixed probe (z, y): ``max(probe_size, K)`` rows, labels cycling over classes.

    Fixed for the whole run (keyed by the seed alone), so generator signatures of different
    rounds are comparable and every process draws the same batch.
    """
    rows = max(probe_size, num_classes)
    z = rng(seed, SERVER, 0, "generator-probe").standard_normal((rows, noise_dim))
    y = np.arange(rows) % num_classes
    return torch.from_numpy(z.astype(np.float32)), torch.from_numpy(y.astype(np.int64))
