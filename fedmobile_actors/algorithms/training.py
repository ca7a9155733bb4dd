"""Local training and evaluation loops shared by every strategy.

Strategies differ in how they fill missing feature slices and in extra loss terms; the loop itself
(mini-batch SGD over a phone's shard, one torch thread, batches drawn from a torch generator keyed
by (seed, phone, task)) is written once here.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from fedmobile_actors.algorithms.model import MultimodalNet
from fedmobile_actors.algorithms.strategy import Evaluation
from fedmobile_actors.data.dataset import LocalData, MultimodalDataset
from fedmobile_actors.scenario.schema import AlgorithmConfig

Features = dict[str, torch.Tensor]
#: Fill(features, present, labels) -> features with absent rows replaced (labels None at test).
Fill = Callable[[Features, Mapping[str, torch.Tensor], torch.Tensor | None], Features]
#: ExtraLoss(model) -> a scalar added to each step's loss (FedProx's proximal term).
ExtraLoss = Callable[[MultimodalNet], torch.Tensor]


def zero_fill(
    feats: Features, present: Mapping[str, torch.Tensor], labels: torch.Tensor | None
) -> Features:
    """Missing slices stay zero: the encoder already leaves absent rows at zero."""
    return feats


@dataclass(frozen=True)
class Batchable:
    """A dataset as tensors, built once per task (no copy: ``torch.from_numpy``)."""

    inputs: dict[str, torch.Tensor]
    present: dict[str, torch.Tensor]
    labels: torch.Tensor

    @staticmethod
    def of(dataset: MultimodalDataset, present: Mapping[str, np.ndarray]) -> Batchable:
        with warnings.catch_warnings():
            # Shards are read-only views of shared memory; the inputs are never written to.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            inputs = {n: torch.from_numpy(a) for n, a in dataset.modalities.items()}
            labels = torch.from_numpy(dataset.labels)
        return Batchable(
            inputs=inputs,
            present={n: torch.from_numpy(np.asarray(present[n], dtype=bool)) for n in present},
            labels=labels,
        )

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: torch.Tensor) -> Batchable:
        return Batchable(
            inputs={n: t[index] for n, t in self.inputs.items()},
            present={n: t[index] for n, t in self.present.items()},
            labels=self.labels[index],
        )


class LocalSGD:
    """SGD with heavy-ball momentum, computed as ``torch.optim.SGD`` does (no dampening, no
    Nesterov, no weight decay).

    Why not ``torch.optim.SGD``: constructing any torch optimizer imports ``torch._dynamo``, about
    a second of start-up in every host process, for an update rule of three lines.
    """

    def __init__(self, params: list[torch.nn.Parameter], lr: float, momentum: float = 0.0) -> None:
        self.params = params
        self.lr = lr
        self.momentum = momentum
        self.buffers: list[torch.Tensor | None] = [None] * len(params)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            step = p.grad
            if self.momentum:
                buf = self.buffers[i]
                if buf is None:
                    buf = self.buffers[i] = step.detach().clone()
                else:
                    buf.mul_(self.momentum).add_(step)
                step = buf
            p.add_(step, alpha=-self.lr)


def train_local(
    model: MultimodalNet,
    data: LocalData,
    config: AlgorithmConfig,
    rng: torch.Generator,
    fill: Fill = zero_fill,
    extra_loss: ExtraLoss | None = None,
) -> float:
    """``config.local_epochs`` of mini-batch SGD in place; returns the mean training loss."""
    batches = Batchable.of(data.dataset, data.present)
    model.train()
    optim = LocalSGD(list(model.parameters()), lr=config.lr, momentum=config.momentum)
    total, count = 0.0, 0
    for _epoch in range(config.local_epochs):
        order = torch.randperm(len(batches), generator=rng)
        for start in range(0, len(batches), config.batch_size):
            batch = batches.take(order[start : start + config.batch_size])
            feats = fill(model.encode(batch.inputs, batch.present), batch.present, batch.labels)
            loss = F.cross_entropy(model.classify(feats), batch.labels)
            if extra_loss is not None:
                loss = loss + extra_loss(model)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            total += float(loss.detach()) * len(batch)
            count += len(batch)
    return total / max(count, 1)


@torch.no_grad()
def evaluate_model(
    model: MultimodalNet,
    dataset: MultimodalDataset,
    present: Mapping[str, np.ndarray],
    fill: Fill = zero_fill,
    batch_size: int = 512,
) -> Evaluation:
    """Accuracy and mean cross-entropy; ``fill`` gets ``labels=None`` (the label is unknown)."""
    if len(dataset) == 0:
        return Evaluation(accuracy=float("nan"), loss=float("nan"))
    batches = Batchable.of(dataset, present)
    model.eval()
    right: list[np.ndarray] = []
    loss_sum = 0.0
    for start in range(0, len(batches), batch_size):
        batch = batches.take(torch.arange(start, min(start + batch_size, len(batches))))
        logits = model.classify(
            fill(model.encode(batch.inputs, batch.present), batch.present, None)
        )
        loss_sum += float(F.cross_entropy(logits, batch.labels, reduction="sum"))
        right.append((logits.argmax(dim=1) == batch.labels).numpy())
    correct = np.concatenate(right)
    return Evaluation(
        accuracy=int(correct.sum()) / len(batches),
        loss=loss_sum / len(batches),
        correct=correct,
    )
