"""The local model of DESIGN.md: one encoder per modality, concatenated features, a linear head.

Encoders are 1-D convolution stacks with global average pooling, chosen per modality from its
(channels, steps) shape, which suits windows of inertial data. A sample that lacks modality m gets
no encoder feature for m: its slice of the concatenated feature is *filled* (zeros, noise, or a
generator's output, depending on the strategy); the encoder never sees the missing window.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

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


class MultimodalNet(nn.Module):
    """Encoders per modality (in a fixed order) + linear classifier over the concatenation."""

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
        self.feature_dims: dict[str, int] = {name: config.conv_channels[-1] for name in shapes}
        self.num_classes = num_classes
        self.head = nn.Linear(sum(self.feature_dims.values()), num_classes)

    def encode(
        self, inputs: Mapping[str, torch.Tensor], present: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Features per modality (B, F_m); rows of absent samples are zero and carry no gradient."""
        feats = {}
        for name in self.modalities:
            x, mask = inputs[name], present[name]
            if bool(mask.all()):
                feats[name] = self.encoders[name](x)
                continue
            out = x.new_zeros((x.shape[0], self.feature_dims[name]))
            if bool(mask.any()):
                out = out.index_put((mask,), self.encoders[name](x[mask]))
            feats[name] = out
        return feats

    def classify(self, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Logits (B, K) from per-modality features, concatenated in the fixed modality order."""
        return self.head(torch.cat([feats[name] for name in self.modalities], dim=1))

    def local_keys(self) -> tuple[str, ...]:
        """State-dict keys that stay on the phone (never averaged, never sent): none here."""
        return ()


def build_model(
    shapes: Mapping[str, tuple[int, int]], num_classes: int, config: ModelConfig, seed: int
) -> MultimodalNet:
    """A model whose initial weights depend on ``seed`` alone (global RNG left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MultimodalNet(shapes, num_classes, config)


def get_arrays(module: nn.Module, prefix: str = "") -> dict[str, np.ndarray]:
    """A module's parameters and buffers as float32 numpy copies (the wire's currency)."""
    return {
        f"{prefix}{name}": t.detach().cpu().numpy().astype(np.float32, copy=True)
        for name, t in module.state_dict().items()
    }


def set_arrays(module: nn.Module, arrays: Mapping[str, np.ndarray], prefix: str = "") -> None:
    """Load arrays named ``prefix + state_dict key`` into ``module`` in place (no rebuild)."""
    with torch.no_grad():
        for name, t in module.state_dict().items():
            # A copy: arrays decoded from the wire are read-only views of the payload bytes.
            t.copy_(torch.from_numpy(np.array(arrays[f"{prefix}{name}"], copy=True)))
