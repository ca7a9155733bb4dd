"""The contract every model kind meets, and the array helpers that move models over the wire."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn


class MultimodalNet(nn.Module):
    """Base class of every model kind: one encoder per modality, a linear head over the
    concatenated features.

    The contract strategies rely on (a model kind subclasses this and builds its encoders):

    - ``modalities``: the modality names, in the fixed order features are concatenated;
    - ``encoders``: an ``nn.ModuleDict`` of one module per modality mapping its window
      (B, C_m, T_m) to features (B, F_m);
    - ``feature_dims``: {modality: F_m};
    - ``head``: ``nn.Linear(sum(F_m), num_classes)`` over the concatenation, so a modality's
      slice of the head's weight is its contribution to the logits (FedMobile's Shapley utility
      and fill rely on that);
    - ``encode(inputs, present)`` -> {modality: (B, F_m)}, rows of absent samples zero and
      without gradient (the encoder never sees a missing window);
    - ``classify(feats)`` -> logits (B, K);
    - ``local_keys()``: state-dict keys that stay on the phone (never averaged or sent); by
      default the running statistics of every BatchNorm layer, so a model with BatchNorm keeps
      its statistics per phone without saying anything.

    Randomness in ``forward`` (dropout) draws from torch's global generator, which strategies
    seed from the task's key around training; a model must draw nothing at construction except
    from the global generator seeded by ``build_model``.
    """

    modalities: tuple[str, ...]
    encoders: nn.ModuleDict
    feature_dims: dict[str, int]
    num_classes: int
    head: nn.Linear

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
        """State-dict keys that stay on the phone: every BatchNorm layer's running statistics."""
        keys: list[str] = []
        for prefix, module in self.named_modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                for buffer, _ in module.named_buffers(recurse=False):
                    keys.append(f"{prefix}.{buffer}" if prefix else buffer)
        return tuple(keys)

    def uses_dropout(self) -> bool:
        """Whether training draws from torch's global generator (dropout masks)."""
        return any(isinstance(m, nn.Dropout) for m in self.modules())


def get_arrays(module: nn.Module, prefix: str = "") -> dict[str, np.ndarray]:
    """A module's parameters and buffers as float32 numpy copies (the wire's currency)."""
    return {
        f"{prefix}{name}": t.detach().cpu().numpy().astype(np.float32, copy=True)
        for name, t in module.state_dict().items()
    }


def set_arrays(module: nn.Module, arrays: Mapping[str, np.ndarray], prefix: str = "") -> None:
    """Load arrays named ``prefix + state_dict key`` into ``module`` in place (no rebuild)."""
    # Each array is copied straight into the module's tensor: an intermediate copy would be
    # fresh memory, whose pages the kernel zeroes on first touch (for the authors' 160 MB
    # generator, a tenth of a phone host's time). Arrays decoded from the wire are read-only
    # views of the payload, which torch will not wrap without a warning: numpy copies those
    # into the tensor's memory (no warnings filter, which threads would race on).
    with torch.no_grad():
        for name, t in module.state_dict().items():
            array = np.asarray(arrays[f"{prefix}{name}"])
            if array.flags.writeable and array.flags.c_contiguous:
                t.copy_(torch.from_numpy(array))
            elif (
                t.dtype == torch.float32
                and array.dtype == np.float32
                and t.device.type == "cpu"
                and t.is_contiguous()
                and tuple(t.shape) == array.shape
            ):
                np.copyto(t.numpy(), array)
            else:
                t.copy_(torch.from_numpy(np.array(array, copy=True)))
