"""``authors_conv2d``: the USC-HAD model of FedMobile's public code (yiliucs/WWW25,
``USC-HAD/model_mhad``), rebuilt from its description.

Per modality the window (C channels x T steps) is a one-channel image; four Conv2d layers
(64, 64, 32, 16 filters; kernels 2, 2, 1, 1; no padding), each followed by BatchNorm and ReLU,
the first three by Dropout(0.5); the maps are flattened (16 x (C-1-1) x (T-1-1) features: 3168
for a 3 x 200 window) and the modalities' features concatenated into one linear layer.

BatchNorm statistics are local to each phone (``local_keys``, inherited): the authors never
average them. Dropout masks come from torch's global generator, seeded per task by the strategy.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from fedmobile_actors.algorithms.models.base import MultimodalNet
from fedmobile_actors.errors import ScenarioError
from fedmobile_actors.scenario.schema import ModelConfig

#: (filters, kernel, dropout after) of each Conv2d layer, as in the authors' code.
LAYERS = ((64, 2, True), (64, 2, True), (32, 1, True), (16, 1, False))


class AuthorsEncoder(nn.Module):
    """(B, C, T) -> (B, 1, C, T) -> 4 x [Conv2d-BN-ReLU(-Dropout)] -> (B, 16 (C-2) (T-2))."""

    def __init__(self, channels: int, steps: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width, h, w = 1, channels, steps
        for filters, kernel, drop in LAYERS:
            layers += [nn.Conv2d(width, filters, kernel), nn.BatchNorm2d(filters), nn.ReLU()]
            if drop:
                layers.append(nn.Dropout(dropout))
            width, h, w = filters, h - kernel + 1, w - kernel + 1
        self.body = nn.Sequential(*layers)
        self.out_dim = width * h * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.unsqueeze(1)).flatten(1)


class AuthorsConv2dNet(MultimodalNet):
    def __init__(
        self, shapes: Mapping[str, tuple[int, int]], num_classes: int, config: ModelConfig
    ) -> None:
        super().__init__()
        small = [f"{n} ({c} x {t})" for n, (c, t) in shapes.items() if c < 3 or t < 3]
        if small:
            raise ScenarioError(
                [f"model.kind authors_conv2d needs windows of at least 3 x 3: {', '.join(small)}"]
            )
        self.modalities = tuple(shapes)
        self.encoders = nn.ModuleDict(
            {name: AuthorsEncoder(c, t, config.dropout) for name, (c, t) in shapes.items()}
        )
        self.feature_dims = {
            name: int(enc.out_dim)  # type: ignore[arg-type]
            for name, enc in self.encoders.items()
        }
        self.num_classes = num_classes
        self.head = nn.Linear(sum(self.feature_dims.values()), num_classes)
