"""SCAFFOLD: control variates against client drift (Karimireddy et al. 2020, arXiv 1910.06378).

Each phone keeps its own control variate ``c_i`` (one array per model parameter) in its phone
state; the server keeps ``c``, the mean of the phones' variates. Every local SGD step follows the
gradient corrected by ``c - c_i``, and after ``K`` steps of rate ``lr`` the phone updates its
variate by option II of the paper::

    c_i+ = c_i - c + (x - y_i) / (K * lr)

It uploads its model ``y_i`` and ``c_i+ - c_i``. The server averages the models as FedAvg does
and adds the variates' changes to its running sum.

One choice of ours: the paper's ``c`` is the mean over all N phones, counting phones that never
trained as zero, and needs N. Here ``c`` is the mean over the phones that have reported at least
once (each phone's first update says so), which is the paper's value once every phone has
reported and needs nothing the strategy cannot see.

What it shows of the plug-in interface (docs/extending.md):

- per-phone state (``stateful = True``): ``c_i`` stays on the phone, is never sent and never
  charged in bytes, and survives host restarts and ``resume`` because the runtime keeps it;
- a payload larger than the model (``c`` travels down with ``x``) and an update with arrays of
  its own (``update_shapes`` tells the wire what to accept);
- the local objective changed through the ``extra_loss`` hook (the gradient of
  ``sum_p <p, c_p - c_i,p>`` is the correction), with every random draw still FedAvg's keyed one.

Use plain SGD (``algorithm.momentum: 0``): option II assumes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import ClassVar

import numpy as np
import torch

from fedmobile_actors.algorithms.admission import admit
from fedmobile_actors.algorithms.aggregation import weighted_average
from fedmobile_actors.algorithms.fedavg import FedAvg
from fedmobile_actors.algorithms.models.base import MultimodalNet
from fedmobile_actors.algorithms.strategy import (
    AggregationResult,
    AlgorithmContext,
    Arrays,
    ClientUpdate,
    GlobalState,
)
from fedmobile_actors.algorithms.training import ExtraLoss, LocalOptimizer, LocalSGD
from fedmobile_actors.data.dataset import LocalData
from fedmobile_actors.errors import ScenarioError

#: Server state: running sum of the phones' variates, and how many phones have reported.
TOTAL, SEEN = "scaffold.total.", "scaffold.seen"
#: Payload: the server variate c.
SERVER_C = "scaffold.c."
#: Update: the change of the phone's variate, and 1.0 on the phone's first update.
DELTA, FIRST = "scaffold.delta_c.", "scaffold.first"
#: Phone state: the phone's variate c_i.
PHONE_C = "scaffold.c_i."


class CountingSGD(LocalSGD):
    """Plain SGD that counts its steps (K in the variate update)."""

    def __init__(self, params: list[torch.nn.Parameter], lr: float) -> None:
        super().__init__(params, lr=lr, momentum=0.0)
        self.steps = 0

    def step(self) -> None:
        super().step()
        self.steps += 1


class Scaffold(FedAvg):
    """FedAvg phones with drift-corrected gradients and per-phone control variates."""

    name = "scaffold"
    stateful: ClassVar[bool] = True

    def __init__(self, context: AlgorithmContext) -> None:
        super().__init__(context)
        if context.algorithm.momentum != 0.0:
            raise ScenarioError(["algorithm.momentum: SCAFFOLD needs plain SGD (momentum 0)"])
        if context.algorithm.options:
            raise ScenarioError(["algorithm.options: SCAFFOLD takes no options"])
        self.params = [name for name, _ in self.model.named_parameters()]
        self._correction: dict[str, torch.Tensor] = {}
        self._optimizer: CountingSGD | None = None

    # ------------------------------------------------------------------ server side

    def initial_state(self) -> GlobalState:
        model = self.shared_arrays()
        totals = {TOTAL + k: np.zeros_like(model[k]) for k in self.params}
        return GlobalState(0, {**model, **totals, SEEN: np.zeros(1, np.float32)})

    def model_part(self, arrays: Arrays) -> Arrays:
        return {k: a for k, a in arrays.items() if not k.startswith("scaffold.")}

    def payload(self, state: GlobalState) -> Arrays:
        """The model and the server variate c (the running mean of the phones' variates)."""
        seen = max(float(state.arrays[SEEN][0]), 1.0)
        c = {SERVER_C + k: (state.arrays[TOTAL + k] / seen).astype(np.float32) for k in self.params}
        return {**self.model_part(state.arrays), **c}

    def update_shapes(self, payload: Arrays) -> dict[str, tuple[str, tuple[int, ...]]]:
        model = self.model_part(payload)
        shapes = {k: (str(a.dtype), tuple(a.shape)) for k, a in model.items()}
        shapes.update({DELTA + k: ("float32", tuple(model[k].shape)) for k in self.params})
        shapes[FIRST] = ("float32", (1,))
        return shapes

    def aggregate(
        self, state: GlobalState, updates: Sequence[ClientUpdate], staleness: Sequence[float]
    ) -> AggregationResult:
        model = self.model_part(state.arrays)
        expected = {k: np.zeros(s, np.float32) for k, (_, s) in self.update_shapes(model).items()}
        kept, factors, rejected = admit(expected, updates, staleness)
        weights = [u.num_samples * s for u, s in zip(kept, factors, strict=True)]
        if not kept or sum(weights) <= 0:
            same = GlobalState(state.version + 1, state.arrays, state.info)
            return AggregationResult(same, {"rejected": rejected})
        arrays = weighted_average([self.model_part(u.arrays) for u in kept], weights)
        for k in self.params:
            total = state.arrays[TOTAL + k].astype(np.float64)
            for u in kept:
                total = total + u.arrays[DELTA + k]
            arrays[TOTAL + k] = total.astype(np.float32)
        seen = float(state.arrays[SEEN][0]) + sum(float(u.arrays[FIRST][0]) for u in kept)
        arrays[SEEN] = np.array([seen], np.float32)
        return AggregationResult(
            GlobalState(state.version + 1, arrays, state.info), {"rejected": rejected}
        )

    # ------------------------------------------------------------------ phone side

    def make_optimizer(self, phone_state: Arrays | None) -> LocalOptimizer:
        """Plain SGD; kept so ``local_update`` can read how many steps the task took."""
        self._optimizer = CountingSGD(list(self.model.parameters()), lr=self.context.algorithm.lr)
        return self._optimizer

    def extra_loss(self, payload: Arrays) -> ExtraLoss | None:
        correction = self._correction

        def drift_term(model: MultimodalNet) -> torch.Tensor:
            total = torch.zeros(())
            for name, p in model.named_parameters():
                total = total + (p * correction[name]).sum()
            return total

        return drift_term

    def local_update(
        self,
        payload: Arrays,
        data: LocalData,
        phone_id: int,
        base_version: int,
        task_id: int,
        phone_state: Arrays | None = None,
    ) -> ClientUpdate:
        c_i = {
            k: phone_state[PHONE_C + k] if phone_state else np.zeros_like(payload[SERVER_C + k])
            for k in self.params
        }
        self._correction = {
            k: torch.from_numpy((payload[SERVER_C + k] - c_i[k]).astype(np.float32))
            for k in self.params
        }
        update = super().local_update(payload, data, phone_id, base_version, task_id, phone_state)
        steps = self._optimizer.steps if self._optimizer is not None else 0
        y = update.arrays
        lr = self.context.algorithm.lr
        if steps == 0:  # no data, no step: the variate stays as it was
            new_c_i = c_i
        else:
            new_c_i = {
                k: (
                    c_i[k].astype(np.float64)
                    - payload[SERVER_C + k]
                    + (payload[k].astype(np.float64) - y[k]) / (steps * lr)
                ).astype(np.float32)
                for k in self.params
            }
        delta = {DELTA + k: (new_c_i[k] - c_i[k]).astype(np.float32) for k in self.params}
        first = np.array([1.0 if phone_state is None else 0.0], np.float32)
        state = {**(update.phone_state or {}), **{PHONE_C + k: v for k, v in new_c_i.items()}}
        return replace(update, arrays={**y, **delta, FIRST: first}, phone_state=state)
