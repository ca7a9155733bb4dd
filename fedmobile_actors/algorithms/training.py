"""Local training and evaluation loops shared by every strategy.

Strategies differ in how they fill missing feature slices and in extra loss terms; the loop itself
(mini-batch SGD over a phone's shard, one torch thread, batches drawn from a torch generator keyed
by (seed, phone, task)) is written once here.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from fedmobile_actors.algorithms.model import MultimodalNet
from fedmobile_actors.algorithms.strategy import Evaluation
from fedmobile_actors.data.dataset import LocalData, MultimodalDataset
from fedmobile_actors.data.step_dropout import StepDropoutSampler
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

    def dropped(self, sampler: StepDropoutSampler | None) -> Batchable:
        """This batch with the step's training-time dropout applied (itself when none): the
        dropped rows' input zeroed (``zero_input``) or marked absent (``absent``)."""
        if sampler is None:
            return self
        inputs, present = dict(self.inputs), dict(self.present)
        for drop in sampler.draw(len(self)):
            if drop.mode == "zero_input":
                x = inputs[drop.modality].clone()
                x[drop.rows] = 0.0
                inputs[drop.modality] = x
            else:
                mask = present[drop.modality].clone()
                mask[drop.rows] = False
                present[drop.modality] = mask
        return Batchable(inputs=inputs, present=present, labels=self.labels)


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


class LocalAdam:
    """Adam (L2 weight decay added to the gradient, no AMSGrad), computed as ``torch.optim.Adam``
    does on CPU, for the same reason as ``LocalSGD``; its moments can be exported per parameter
    name and restored, so a stateful strategy can keep them on the phone (as the FedMobile
    authors' per-node Adam does) across tasks."""

    def __init__(
        self,
        params: list[torch.nn.Parameter],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        self.params = params
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.steps = [0] * len(params)
        self.exp_avg: list[torch.Tensor | None] = [None] * len(params)
        self.exp_avg_sq: list[torch.Tensor | None] = [None] * len(params)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            grad = p.grad
            if self.weight_decay:
                grad = grad.add(p, alpha=self.weight_decay)
            m, v = self.exp_avg[i], self.exp_avg_sq[i]
            if m is None or v is None:
                m = self.exp_avg[i] = torch.zeros_like(p)
                v = self.exp_avg_sq[i] = torch.zeros_like(p)
            self.steps[i] += 1
            m.lerp_(grad, 1 - beta1)
            v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            step_size = self.lr / (1 - beta1 ** self.steps[i])
            denom = (v.sqrt() / math.sqrt(1 - beta2 ** self.steps[i])).add_(self.eps)
            p.addcdiv_(m, denom, value=-step_size)

    def state_arrays(self, names: list[str], prefix: str = "adam.") -> dict[str, np.ndarray]:
        """The moments and step counts of the parameters that have stepped, by parameter name."""
        out: dict[str, np.ndarray] = {}
        for i, name in enumerate(names):
            m, v = self.exp_avg[i], self.exp_avg_sq[i]
            if m is None or v is None:
                continue
            out[f"{prefix}{name}.exp_avg"] = m.numpy().astype(np.float32, copy=True)
            out[f"{prefix}{name}.exp_avg_sq"] = v.numpy().astype(np.float32, copy=True)
            out[f"{prefix}{name}.step"] = np.array([self.steps[i]], dtype=np.int64)
        return out

    def load_state(
        self, arrays: Mapping[str, np.ndarray], names: list[str], prefix: str = "adam."
    ) -> None:
        """Restore what ``state_arrays`` exported (parameters absent there start afresh)."""
        for i, name in enumerate(names):
            key = f"{prefix}{name}"
            if f"{key}.exp_avg" not in arrays:
                continue
            self.exp_avg[i] = torch.from_numpy(np.array(arrays[f"{key}.exp_avg"], copy=True))
            self.exp_avg_sq[i] = torch.from_numpy(np.array(arrays[f"{key}.exp_avg_sq"], copy=True))
            self.steps[i] = int(arrays[f"{key}.step"][0])


#: The optimizers local training accepts (``make_optimizer`` of a strategy returns one).
LocalOptimizer = LocalSGD | LocalAdam


def train_local(
    model: MultimodalNet,
    data: LocalData,
    config: AlgorithmConfig,
    rng: torch.Generator,
    fill: Fill = zero_fill,
    extra_loss: ExtraLoss | None = None,
    optimizer: LocalOptimizer | None = None,
    step_dropout: StepDropoutSampler | None = None,
) -> float:
    """``config.local_epochs`` of mini-batch SGD in place; returns the mean training loss.

    ``optimizer`` (over ``model.parameters()``) lets a stateful strategy carry its moments from
    one task of a phone to the next; by default a fresh one per task. ``step_dropout`` drops a
    modality from random rows of every batch, redrawn each step (the authors' protocol)."""
    batches = Batchable.of(data.dataset, data.present)
    model.train()
    optim: LocalOptimizer | None = optimizer
    if optim is None:
        optim = LocalSGD(list(model.parameters()), lr=config.lr, momentum=config.momentum)
    total, count = 0.0, 0
    for _epoch in range(config.local_epochs):
        order = torch.randperm(len(batches), generator=rng)
        for start in range(0, len(batches), config.batch_size):
            batch = batches.take(order[start : start + config.batch_size]).dropped(step_dropout)
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
    correct, loss_sum = 0, 0.0
    for start in range(0, len(batches), batch_size):
        batch = batches.take(torch.arange(start, min(start + batch_size, len(batches))))
        logits = model.classify(
            fill(model.encode(batch.inputs, batch.present), batch.present, None)
        )
        loss_sum += float(F.cross_entropy(logits, batch.labels, reduction="sum"))
        correct += int((logits.argmax(dim=1) == batch.labels).sum())
    return Evaluation(accuracy=correct / len(batches), loss=loss_sum / len(batches))
