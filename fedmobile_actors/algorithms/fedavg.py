"""FedAvg with missing modalities zero-filled: the baseline every other strategy is measured by.

McMahan et al. 2017; a missing modality contributes a zero feature slice, so the head learns from
whatever modalities a sample has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from fedmobile_actors.algorithms.admission import admit
from fedmobile_actors.algorithms.aggregation import weighted_average
from fedmobile_actors.algorithms.model import build_model, get_arrays, set_arrays
from fedmobile_actors.algorithms.strategy import (
    AggregationResult,
    AlgorithmContext,
    Arrays,
    ClientUpdate,
    Evaluation,
    GlobalState,
    Strategy,
)
from fedmobile_actors.algorithms.training import (
    ExtraLoss,
    Fill,
    evaluate_model,
    train_local,
    zero_fill,
)
from fedmobile_actors.data.dataset import LocalData, MultimodalDataset
from fedmobile_actors.seeding import SERVER, int_seed


class FedAvg(Strategy):
    """Sample-weighted parameter averaging; subclasses change the fill or add a loss term."""

    name = "fedavg"

    def __init__(self, context: AlgorithmContext) -> None:
        super().__init__(context)
        # One working model per process, loaded from each payload: never rebuilt per task.
        self.model = build_model(
            context.shapes,
            context.num_classes,
            context.model,
            int_seed(context.seed, SERVER, 0, "init"),
        )

    def initial_state(self) -> GlobalState:
        return GlobalState(version=0, arrays=get_arrays(self.model))

    def train_fill(self, rng: torch.Generator) -> Fill:
        """How absent feature slices are filled during local training."""
        return zero_fill

    def eval_fill(self, state: GlobalState) -> Fill:
        """How absent feature slices are filled at test time."""
        return zero_fill

    def extra_loss(self, payload: Arrays) -> ExtraLoss | None:
        """An extra term of the local objective (None for FedAvg)."""
        return None

    def local_update(
        self, payload: Arrays, data: LocalData, phone_id: int, base_version: int, task_id: int
    ) -> ClientUpdate:
        set_arrays(self.model, payload)
        rng = torch.Generator().manual_seed(int_seed(self.context.seed, phone_id, task_id, "train"))
        loss = train_local(
            self.model,
            data,
            self.context.algorithm,
            rng,
            fill=self.train_fill(rng),
            extra_loss=self.extra_loss(payload),
        )
        return ClientUpdate(
            phone_id=phone_id,
            base_version=base_version,
            num_samples=len(data),
            arrays=get_arrays(self.model),
            metrics={"train_loss": loss},
        )

    def aggregate(
        self, state: GlobalState, updates: Sequence[ClientUpdate], staleness: Sequence[float]
    ) -> AggregationResult:
        updates, factors, rejected = admit(state.arrays, updates, staleness)
        metrics = {"rejected": rejected}
        w = [u.num_samples * s for u, s in zip(updates, factors, strict=True)]
        if not updates or sum(w) <= 0:
            same = GlobalState(state.version + 1, state.arrays, state.info)
            return AggregationResult(same, metrics)
        arrays = weighted_average([u.arrays for u in updates], w)
        return AggregationResult(GlobalState(state.version + 1, arrays, state.info), metrics)

    def evaluate(
        self, state: GlobalState, test: MultimodalDataset, present: Mapping[str, np.ndarray]
    ) -> Evaluation:
        set_arrays(self.model, state.arrays)
        return evaluate_model(self.model, test, present, fill=self.eval_fill(state))
