"""A model kind outside the package: per modality, summary statistics of the window and a
small linear layer.

Each encoder turns a window (B, C, T) into per-channel mean, standard deviation, minimum and
maximum over time (4C numbers, the classic hand-made features of activity recognition), then a
``Linear`` + ReLU to ``FEATURES`` features; a linear head reads the concatenated features. It is
tiny (a few hundred weights per modality), trains in milliseconds, and meets the whole
``MultimodalNet`` contract, so it provides both capabilities strategies may need: FedMobile can
use it too.

A scenario names it ``model.kind: fedmobile_examples.stats_model:build``. The builder is called
as ``build(shapes, num_classes, config)`` under a seeded torch generator, so the initial weights
depend on the scenario's seed alone; ``provides`` on the builder states the capabilities.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from fedmobile_actors.algorithms.models.base import MultimodalNet
from fedmobile_actors.scenario.schema import ModelConfig

#: Features per modality.
FEATURES = 16


class StatsEncoder(nn.Module):
    """(B, C, T) -> mean, std, min, max per channel (B, 4C) -> Linear + ReLU (B, FEATURES)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.project = nn.Linear(4 * channels, FEATURES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stats = torch.cat(
            [x.mean(dim=2), x.std(dim=2, unbiased=False), x.amin(dim=2), x.amax(dim=2)], dim=1
        )
        return torch.relu(self.project(stats))


class StatsNet(MultimodalNet):
    """One ``StatsEncoder`` per modality, a linear head over the concatenation."""

    def __init__(
        self, shapes: Mapping[str, tuple[int, int]], num_classes: int, config: ModelConfig
    ) -> None:
        super().__init__()
        self.modalities = tuple(shapes)
        self.encoders = nn.ModuleDict({name: StatsEncoder(c) for name, (c, _t) in shapes.items()})
        self.feature_dims = {name: FEATURES for name in shapes}
        self.num_classes = num_classes
        self.head = nn.Linear(FEATURES * len(shapes), num_classes)


def build(
    shapes: Mapping[str, tuple[int, int]], num_classes: int, config: ModelConfig
) -> MultimodalNet:
    """The builder a scenario names (``config`` is the scenario's ``model`` section; this kind
    reads none of its fields)."""
    return StatsNet(shapes, num_classes, config)


#: What this kind offers strategies (models.registry.CAPABILITIES): a separate feature slice
#: per modality, and a single linear head over them.
build.provides = frozenset({"modality_encoders", "linear_head"})  # type: ignore[attr-defined]
