"""FedAvgM: FedAvg with server momentum (Hsu, Qi, Brown 2019, arXiv 1909.06335).

The phones do exactly what FedAvg's do; the server treats the averaged change of the model as a
pseudo-gradient and applies it with heavy-ball momentum::

    delta = x - mean(updates)          # sample-weighted, as FedAvg
    v     = beta * v + delta
    x     = x - server_lr * v

Why it is a plug-in example: it keeps server-side state that phones never see. The velocity
lives in ``GlobalState.arrays`` (so checkpoints carry it and ``resume`` gives the same numbers)
but ``payload`` leaves it out, so phones neither download it nor are charged bytes for it.

Options (``algorithm.options``): ``server_momentum`` (beta, default 0.9), ``server_lr``
(default 1.0). With beta = 0 and server_lr = 1 this is FedAvg up to float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fedmobile_actors.algorithms.admission import admit
from fedmobile_actors.algorithms.aggregation import weighted_average
from fedmobile_actors.algorithms.fedavg import FedAvg
from fedmobile_actors.algorithms.strategy import (
    AggregationResult,
    AlgorithmContext,
    Arrays,
    ClientUpdate,
    GlobalState,
)
from fedmobile_actors.errors import ScenarioError

#: Prefix of the velocity arrays in the server's state (never in a payload).
VELOCITY = "server_velocity."


class FedAvgM(FedAvg):
    """FedAvg phones, a momentum server."""

    name = "fedavgm"

    def __init__(self, context: AlgorithmContext) -> None:
        super().__init__(context)
        options = dict(context.algorithm.options)
        unknown = sorted(set(options) - {"server_momentum", "server_lr"})
        if unknown:
            raise ScenarioError([f"algorithm.options: FedAvgM has no option {unknown[0]!r}"])
        self.beta = float(options.get("server_momentum", 0.9))
        self.server_lr = float(options.get("server_lr", 1.0))
        if not 0.0 <= self.beta < 1.0:
            raise ScenarioError(["algorithm.options.server_momentum: must be in [0, 1)"])
        if not self.server_lr > 0.0:
            raise ScenarioError(["algorithm.options.server_lr: must be > 0"])

    def initial_state(self) -> GlobalState:
        model = self.shared_arrays()
        velocity = {VELOCITY + k: np.zeros_like(a) for k, a in model.items()}
        return GlobalState(version=0, arrays={**model, **velocity})

    def payload(self, state: GlobalState) -> Arrays:
        """Phones download the model only; the velocity stays on the server."""
        return {k: a for k, a in state.arrays.items() if not k.startswith(VELOCITY)}

    def aggregate(
        self, state: GlobalState, updates: Sequence[ClientUpdate], staleness: Sequence[float]
    ) -> AggregationResult:
        model = self.payload(state)
        kept, factors, rejected = admit(model, updates, staleness)
        weights = [u.num_samples * s for u, s in zip(kept, factors, strict=True)]
        if not kept or sum(weights) <= 0:
            # No pseudo-gradient this round: keep the model and the velocity as they are.
            same = GlobalState(state.version + 1, state.arrays, state.info)
            return AggregationResult(same, {"rejected": rejected})
        mean = weighted_average([u.arrays for u in kept], weights)
        arrays: Arrays = {}
        for k, x in model.items():
            # float64 arithmetic, float32 storage, in a fixed order: the same bits every time.
            delta = x.astype(np.float64) - mean[k]
            v = self.beta * state.arrays[VELOCITY + k].astype(np.float64) + delta
            arrays[k] = (x - self.server_lr * v).astype(np.float32)
            arrays[VELOCITY + k] = v.astype(np.float32)
        return AggregationResult(
            GlobalState(state.version + 1, arrays, state.info), {"rejected": rejected}
        )
