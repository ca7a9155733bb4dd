"""Local training and evaluation loops shared by every strategy.

Strategies differ in how they fill missing feature slices and in extra loss terms; the loop itself
(mini-batch SGD over a phone's shard, one torch thread, batches drawn from a torch generator keyed
by (seed, phone, task)) is written once here.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from fedmobile_actors.algorithms.device import model_device
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

    def to(self, device: torch.device) -> Batchable:
        """This batch on ``device`` (itself on the CPU: no copy). The data stays in shared
        memory on the CPU; only each step's batch is copied to a GPU."""
        if device.type == "cpu":
            return self
        return Batchable(
            inputs={n: t.to(device) for n, t in self.inputs.items()},
            present={n: t.to(device) for n, t in self.present.items()},
            labels=self.labels.to(device),
        )

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


@dataclass(frozen=True)
class AdamMoments:
    """Adam's per-parameter state, in the order of the optimizer's parameters.

    ``steps[i]`` counts the updates parameter i has had (a parameter without a gradient is not
    stepped, as in torch); ``exp_avg`` and ``exp_avg_sq`` are the first and second moments.
    A parameter that was never stepped has step 0 and zero moments, which is exactly the state
    torch creates on its first step.
    """

    steps: tuple[int, ...]
    exp_avg: tuple[torch.Tensor, ...]
    exp_avg_sq: tuple[torch.Tensor, ...]


class LocalAdam:
    """Adam computed as ``torch.optim.Adam`` does on CPU (its single-tensor path; no amsgrad,
    no maximize), with torch's L2 ``weight_decay`` (added to the gradient, not decoupled).

    Why not ``torch.optim.Adam``: its first construction in a process imports ``torch._dynamo``
    (docs/performance.md has the figures), start-up paid by every host that runs FedMobile.
    ``moments()`` and ``load_moments()`` let a caller keep the moments across tasks.
    """

    def __init__(
        self,
        params: list[torch.nn.Parameter],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        self.params = params
        self.lr = lr
        self.betas = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self._steps = [0] * len(params)
        self._exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]
        self._exp_avg_sq = [
            torch.zeros_like(p, memory_format=torch.preserve_format) for p in params
        ]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    def moments(self) -> AdamMoments:
        """A copy of the state, safe to keep while this optimizer goes on stepping."""
        return AdamMoments(
            steps=tuple(self._steps),
            exp_avg=tuple(m.detach().clone() for m in self._exp_avg),
            exp_avg_sq=tuple(v.detach().clone() for v in self._exp_avg_sq),
        )

    @torch.no_grad()
    def load_moments(self, moments: AdamMoments) -> None:
        """Continue from saved state (copied in; shapes must match the parameters)."""
        if not len(moments.steps) == len(moments.exp_avg) == len(moments.exp_avg_sq):
            raise ValueError("moments: steps, exp_avg and exp_avg_sq differ in length")
        if len(moments.steps) != len(self.params):
            raise ValueError(
                f"moments hold {len(moments.steps)} parameters, not {len(self.params)}"
            )
        for i, p in enumerate(self.params):
            if moments.exp_avg[i].shape != p.shape or moments.exp_avg_sq[i].shape != p.shape:
                raise ValueError(f"moments of parameter {i} do not have its shape {tuple(p.shape)}")
            self._exp_avg[i].copy_(moments.exp_avg[i])
            self._exp_avg_sq[i].copy_(moments.exp_avg_sq[i])
        self._steps = list(moments.steps)

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            grad = p.grad
            if self.weight_decay != 0:
                grad = grad.add(p, alpha=self.weight_decay)
            self._steps[i] += 1
            # torch keeps the count in a float32 tensor and reads it back with .item().
            step = float(self._steps[i])
            exp_avg, exp_avg_sq = self._exp_avg[i], self._exp_avg_sq[i]
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            step_size = self.lr / (1 - beta1**step)
            bias_correction2_sqrt = (1 - beta2**step) ** 0.5
            denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
            p.addcdiv_(exp_avg, denom, value=-step_size)

    def state_arrays(self, names: list[str], prefix: str = "adam.") -> dict[str, np.ndarray]:
        """The moments and step counts of the parameters that have stepped, by parameter name
        (the form a strategy keeps in phone state; parameters never stepped are left out)."""
        out: dict[str, np.ndarray] = {}
        for i, name in enumerate(names):
            if self._steps[i] == 0:
                continue
            out[f"{prefix}{name}.exp_avg"] = (
                self._exp_avg[i].cpu().numpy().astype(np.float32, copy=True)
            )
            out[f"{prefix}{name}.exp_avg_sq"] = (
                self._exp_avg_sq[i].cpu().numpy().astype(np.float32, copy=True)
            )
            out[f"{prefix}{name}.step"] = np.array([self._steps[i]], dtype=np.int64)
        return out

    @torch.no_grad()
    def load_state(
        self, arrays: Mapping[str, np.ndarray], names: list[str], prefix: str = "adam."
    ) -> None:
        """Restore what ``state_arrays`` exported (parameters absent there start afresh)."""
        for i, name in enumerate(names):
            key = f"{prefix}{name}"
            if f"{key}.exp_avg" not in arrays:
                continue
            self._exp_avg[i].copy_(torch.from_numpy(np.array(arrays[f"{key}.exp_avg"], copy=True)))
            self._exp_avg_sq[i].copy_(
                torch.from_numpy(np.array(arrays[f"{key}.exp_avg_sq"], copy=True))
            )
            self._steps[i] = int(arrays[f"{key}.step"][0])


def with_modality_hidden(
    feats: Features, present: Mapping[str, torch.Tensor], modality: str
) -> tuple[torch.Tensor, Features, dict[str, torch.Tensor]] | None:
    """The rows that have ``modality`` and at least one other: (their mask, their features,
    their presence with ``modality`` marked absent). None when no row qualifies. The unit of
    every "hide a modality on a complete row" loss (distillation, feature matching)."""
    others = [present[k] for k in feats if k != modality]
    if modality not in feats or not others:
        return None
    rows = present[modality] & torch.stack(others).any(dim=0)
    if not bool(rows.any()):
        return None
    sub = {k: f[rows] for k, f in feats.items()}
    hidden = {
        k: (p[rows] if k != modality else torch.zeros_like(p[rows])) for k, p in present.items()
    }
    return rows, sub, hidden


@dataclass(frozen=True)
class MissingDistillation:
    """Self-distillation from complete rows into the path a missing modality takes.

    For each modality in ``hidden`` and each row of a batch that has it and another modality:
    teacher = the model on the row as it is (detached), student = the model on the row with that
    modality hidden and filled by ``fill`` (zero for FedAvg, the generator's for a FedMobile
    variant). The loss is ``weight * T^2 * KL(teacher || student)`` (Hinton et al.'s scaling,
    so ``weight`` means the same at every T), summed over the hidden modalities.

    Why: at high missing rates most rows, and most test rows, lack the modality; the complete
    rows train only the both-modality path. Hiding the modality on them gives the missing path
    more rows, and soft targets from a teacher that saw both modalities.
    """

    weight: float
    temperature: float
    hidden: tuple[str, ...]

    def loss(
        self,
        model: MultimodalNet,
        feats: Features,
        present: Mapping[str, torch.Tensor],
        fill: Fill,
    ) -> torch.Tensor:
        t = self.temperature
        total = next(iter(feats.values())).new_zeros(())
        for m in self.hidden:
            complete = with_modality_hidden(feats, present, m)
            if complete is None:
                continue
            _rows, sub, hidden = complete
            teacher = F.log_softmax(model.classify(sub).detach() / t, dim=1)
            student_feats = fill({**sub, m: torch.zeros_like(sub[m])}, hidden, None)
            student = F.log_softmax(model.classify(student_feats) / t, dim=1)
            total = total + F.kl_div(student, teacher, log_target=True, reduction="batchmean")
        return total * (self.weight * t * t)


def missing_distillation(
    config: AlgorithmConfig,
    modalities: Sequence[str],
    present: Mapping[str, np.ndarray],
    step_dropout: Sequence[str] = (),
) -> MissingDistillation | None:
    """The scenario's missing-path distillation for one phone: the modalities hidden are those
    the phone misses on some row or loses to training-time dropout (None when off, when the
    model has one modality, or when the phone misses nothing)."""
    settings = config.missing_distill
    if settings.weight <= 0 or len(modalities) < 2:
        return None
    hidden = tuple(
        m
        for m in modalities
        if m in step_dropout or (m in present and not bool(np.asarray(present[m]).all()))
    )
    if not hidden:
        return None
    return MissingDistillation(settings.weight, settings.temperature, hidden)


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
    distill: MissingDistillation | None = None,
) -> float:
    """``config.local_epochs`` of mini-batch SGD in place; returns the mean training loss.

    ``optimizer`` (over ``model.parameters()``) lets a stateful strategy carry its moments from
    one task of a phone to the next; by default a fresh one per task. ``step_dropout`` drops a
    modality from random rows of every batch, redrawn each step (the authors' protocol).
    ``distill`` adds self-distillation from the batch's complete rows into the missing path,
    filled by the same ``fill`` (labels unknown to the fill, as at test).

    Batches are drawn and dropped on the CPU (the same draws on every device) and then moved
    to the model's device."""
    batches = Batchable.of(data.dataset, data.present)
    device = model_device(model)
    model.train()
    optim: LocalOptimizer | None = optimizer
    if optim is None:
        optim = LocalSGD(list(model.parameters()), lr=config.lr, momentum=config.momentum)
    total, count = 0.0, 0
    for _epoch in range(config.local_epochs):
        order = torch.randperm(len(batches), generator=rng)
        for start in range(0, len(batches), config.batch_size):
            batch = batches.take(order[start : start + config.batch_size])
            batch = batch.dropped(step_dropout).to(device)
            feats = fill(model.encode(batch.inputs, batch.present), batch.present, batch.labels)
            loss = F.cross_entropy(model.classify(feats), batch.labels)
            if distill is not None:
                loss = loss + distill.loss(model, feats, batch.present, fill)
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
    device = model_device(model)
    model.eval()
    right: list[np.ndarray] = []
    loss_sum = 0.0
    for start in range(0, len(batches), batch_size):
        index = torch.arange(start, min(start + batch_size, len(batches)))
        batch = batches.take(index).to(device)
        logits = model.classify(
            fill(model.encode(batch.inputs, batch.present), batch.present, None)
        )
        loss_sum += float(F.cross_entropy(logits, batch.labels, reduction="sum"))
        right.append((logits.argmax(dim=1) == batch.labels).cpu().numpy())
    correct = np.concatenate(right)
    return Evaluation(
        accuracy=int(correct.sum()) / len(batches),
        loss=loss_sum / len(batches),
        correct=correct,
    )
