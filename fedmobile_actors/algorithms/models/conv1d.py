"""``conv1d``, the default model kind: per modality a Conv1d-ReLU stack with global average
pooling, chosen from the modality's (channels, steps) shape; suits windows of inertial data."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from fedmobile_actors.algorithms.models.base import MultimodalNet
from fedmobile_actors.scenario.schema import ModelConfig


class ModalityEncoder(nn.Module):
    """Conv1d-ReLU stacks, then global average pooling: (B, C, T) -> (B, F)."""

    def __init__(self, channels: int, conv_channels: tuple[int, ...], kernel_size: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = channels
        for out in conv_channels:
            layers += [nn.Conv1d(width, out, kernel_size, padding=kernel_size // 2), nn.ReLU()]
            width = out
        self.body = nn.Sequential(*layers)
        self.out_dim = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean(dim=2)  # (B, F)


class Conv1dNet(MultimodalNet):
    """Conv1d encoders per modality (in a fixed order) + linear classifier over the
    concatenation. Construction order (encoders, then head) fixes the initial weights."""

    def __init__(
        self, shapes: Mapping[str, tuple[int, int]], num_classes: int, config: ModelConfig
    ) -> None:
        super().__init__()
        self.modalities = tuple(shapes)
        self.encoders = nn.ModuleDict(
            {
                name: ModalityEncoder(c, config.conv_channels, config.kernel_size)
                for name, (c, _steps) in shapes.items()
            }
        )
        self.feature_dims = {name: config.conv_channels[-1] for name in shapes}
        self.num_classes = num_classes
        self.head = nn.Linear(sum(self.feature_dims.values()), num_classes)
