"""Training-time modality dropout redrawn every local step: the FedMobile authors' "missing rate".

Their code (yiliucs/WWW25, ``USC-HAD/MMFL_main``, ``train_multi``) zeroes the accelerometer input
of ``int(rate * batch)`` rows drawn afresh with ``random.sample`` at every step, on every node,
and evaluates on complete test sets. Here the rows come from a torch generator keyed by
(seed, phone, task, "step-dropout"), so a re-run task drops the same rows; the fixed per-sample
masks of ``masking.presence`` are a different protocol and are kept beside this one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fedmobile_actors.scenario.schema import StepDropout


@dataclass(frozen=True)
class DroppedRows:
    """Which rows of one batch lose ``modality`` this step, and how (``zero_input``/``absent``)."""

    modality: str
    mode: str
    rows: torch.Tensor  # int64 row indices within the batch, sorted


class StepDropoutSampler:
    """Draws each step's dropped rows for every configured modality from one keyed generator."""

    def __init__(self, rules: tuple[StepDropout, ...], rng: torch.Generator) -> None:
        self.rules = rules
        self.rng = rng

    def draw(self, batch_size: int) -> list[DroppedRows]:
        """``int(rate * batch_size)`` distinct rows per rule, as ``random.sample`` would pick."""
        out = []
        for rule in self.rules:
            count = int(rule.rate * batch_size)
            rows = torch.randperm(batch_size, generator=self.rng)[:count]
            out.append(DroppedRows(rule.modality, rule.mode, torch.sort(rows).values))
        return out
