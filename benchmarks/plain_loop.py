"""The ideal's inner loop: one phone's local epoch in plain torch, nothing around it.

Kept apart from ``common`` so that the benchmark drivers of this project's runtime do not
import torch (its driver process does not need it, and the benchmark must not add it).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from benchmarks.common import BATCH, LR
from fedmobile_actors.algorithms.model import MultimodalNet


def plain_train(
    model: MultimodalNet,
    inputs: Mapping[str, torch.Tensor],
    labels: torch.Tensor,
    rng: torch.Generator,
) -> float:
    """One local epoch of the workload's SGD; returns the mean training loss.

    Every sample has every modality here, so this is exactly the arithmetic the runtime's
    ``train_local`` does (same model modules, same batches of 32, same SGD), minus masks,
    bookkeeping and encoding.
    """
    model.train()
    optim = torch.optim.SGD(model.parameters(), lr=LR)
    order = torch.randperm(len(labels), generator=rng)
    total = 0.0
    for start in range(0, len(labels), BATCH):
        idx = order[start : start + BATCH]
        feats = [model.encoders[m](inputs[m][idx]) for m in model.modalities]  # (B, 64) each
        loss = F.cross_entropy(model.head(torch.cat(feats, dim=1)), labels[idx])  # logits (B, 6)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        total += float(loss.detach()) * len(idx)
    return total / len(labels)
