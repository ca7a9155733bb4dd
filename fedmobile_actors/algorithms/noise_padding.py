"""Random-noise padding: a missing modality's feature slice is filled with Gaussian noise.

The simplest alternative to zero-filling (and the baseline FedMobile's generator must beat): the
head sees *something* in every slice, but nothing that carries class information. Training noise
comes from the task's keyed torch generator; test-time noise from (seed, version), so an
evaluation is repeatable.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from fedmobile_actors.algorithms.fedavg import FedAvg
from fedmobile_actors.algorithms.strategy import GlobalState
from fedmobile_actors.algorithms.training import Features, Fill
from fedmobile_actors.seeding import SERVER, int_seed


def noise_fill(std: float, rng: torch.Generator) -> Fill:
    """Absent rows of each slice become N(0, std^2) noise; present rows are untouched."""

    def fill(
        feats: Features, present: Mapping[str, torch.Tensor], labels: torch.Tensor | None
    ) -> Features:
        out = dict(feats)
        for name, f in feats.items():
            mask = present[name]
            if not bool(mask.all()):
                # Drawn on the CPU generator, so a GPU run fills the same noise.
                noise = torch.randn(f.shape, generator=rng, dtype=f.dtype).to(f.device) * std
                out[name] = torch.where(mask[:, None], f, noise)
        return out

    return fill


class NoisePadding(FedAvg):
    """FedAvg with noise instead of zeros in missing feature slices, in training and at test."""

    name = "noise_padding"
    trains_on_gpu = True

    def train_fill(self, rng: torch.Generator) -> Fill:
        return noise_fill(self.context.algorithm.noise_std, rng)

    def eval_fill(self, state: GlobalState) -> Fill:
        seed = int_seed(self.context.seed, SERVER, state.version, "eval-noise")
        return noise_fill(self.context.algorithm.noise_std, torch.Generator().manual_seed(seed))
