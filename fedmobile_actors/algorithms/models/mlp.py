"""``mlp``: per modality an MLP over the flattened window. A baseline without any temporal
inductive bias, to show how much the convolutions of the other kinds contribute."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from fedmobile_actors.algorithms.models.base import MultimodalNet
from fedmobile_actors.scenario.schema import ModelConfig


class MlpEncoder(nn.Module):
    """Flatten (B, C, T) -> (B, C*T), then Linear-ReLU layers of widths ``hidden``."""

    def __init__(self, inputs: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = inputs
        for out in hidden:
            layers += [nn.Linear(width, out), nn.ReLU()]
            width = out
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class MlpNet(MultimodalNet):
    def __init__(
        self, shapes: Mapping[str, tuple[int, int]], num_classes: int, config: ModelConfig
    ) -> None:
        super().__init__()
        self.modalities = tuple(shapes)
        self.encoders = nn.ModuleDict(
            {name: MlpEncoder(c * t, config.mlp_hidden) for name, (c, t) in shapes.items()}
        )
        self.feature_dims = {name: config.mlp_hidden[-1] for name in shapes}
        self.num_classes = num_classes
        self.head = nn.Linear(sum(self.feature_dims.values()), num_classes)
