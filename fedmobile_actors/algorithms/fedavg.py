"""FedAvg with missing modalities zero-filled: the baseline every other strategy is measured by.

McMahan et al. 2017; a missing modality contributes a zero feature slice, so the head learns from
whatever modalities a sample has.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext

import numpy as np
import torch

from fedmobile_actors.algorithms.admission import admit
from fedmobile_actors.algorithms.aggregation import OrderedWeightedSum, weighted_average
from fedmobile_actors.algorithms.model import build_model, get_arrays, set_arrays
from fedmobile_actors.algorithms.strategy import (
    Accumulator,
    AggregationResult,
    AlgorithmContext,
    Arrays,
    ClientUpdate,
    Evaluation,
    GlobalState,
    Slot,
    Strategy,
)
from fedmobile_actors.algorithms.training import (
    ExtraLoss,
    Fill,
    LocalAdam,
    LocalOptimizer,
    LocalSGD,
    MissingDistillation,
    evaluate_model,
    missing_distillation,
    train_local,
    zero_fill,
)
from fedmobile_actors.data.dataset import LocalData, MultimodalDataset
from fedmobile_actors.data.step_dropout import StepDropoutSampler
from fedmobile_actors.seeding import SERVER, int_seed


class FedAvg(Strategy):
    """Sample-weighted parameter averaging; subclasses change the fill or add a loss term."""

    name = "fedavg"
    trains_on_gpu = True

    def __init__(self, context: AlgorithmContext) -> None:
        super().__init__(context)
        # One working model per process, loaded from each payload: never rebuilt per task.
        self.model = build_model(
            context.shapes,
            context.num_classes,
            context.model,
            int_seed(context.seed, SERVER, 0, "init"),
        )
        # Arrays the model keeps on the phone (e.g. BatchNorm statistics): never in the payload
        # or an update, kept in the phone's state; a phone that has not trained yet starts from
        # the initial values.
        self.local_keys = frozenset(self.model.local_keys())
        self._dropout = self.model.uses_dropout()
        self._initial_local = {
            k: a for k, a in get_arrays(self.model).items() if k in self.local_keys
        }
        # Built on the CPU (the same initial weights everywhere), then moved to a GPU when this
        # process trains on one and the strategy's own code can (``trains_on_gpu``).
        if context.device != "cpu" and self.trains_on_gpu:
            self.model.to(torch.device(context.device))

    def is_stateful(self) -> bool:
        return self.stateful or bool(self.local_keys) or self.context.algorithm.optimizer == "adam"

    def initial_state(self) -> GlobalState:
        return GlobalState(version=0, arrays=self.shared_arrays())

    def shared_arrays(self) -> Arrays:
        """The working model's arrays that travel (all but the model's local ones)."""
        arrays = get_arrays(self.model)
        if not self.local_keys:
            return arrays
        return {k: a for k, a in arrays.items() if k not in self.local_keys}

    def local_arrays(self) -> Arrays:
        """The working model's arrays that stay on the phone."""
        return {k: a for k, a in get_arrays(self.model).items() if k in self.local_keys}

    def load_model(
        self, shared: Mapping[str, np.ndarray], phone_state: Arrays | None = None
    ) -> None:
        """Load the global ``shared`` arrays, and the local ones from ``phone_state`` (or their
        initial values for a phone that has not trained yet), into the working model."""
        if not self.local_keys:
            set_arrays(self.model, shared)
            return
        local = {
            k: (phone_state[k] if phone_state is not None and k in phone_state else a)
            for k, a in self._initial_local.items()
        }
        set_arrays(self.model, {**shared, **local})

    def keyed_dropout(self, phone_id: int, task_id: int) -> AbstractContextManager[object]:
        """Dropout masks come from torch's global generator, which is not keyed: seed it from
        (seed, phone, task) for the task and restore it after, so a re-run gives the same masks.
        Models without dropout never touch it (and pay nothing)."""
        if not self._dropout:
            return nullcontext()
        return _seeded_global_rng(int_seed(self.context.seed, phone_id, task_id, "dropout"))

    def make_optimizer(self, phone_state: Arrays | None) -> LocalOptimizer:
        """The local optimizer of one task; a stateful subclass restores its moments here (or
        returns a ``LocalAdam`` restored with ``load_state``)."""
        algo = self.context.algorithm
        if algo.optimizer == "adam":
            adam = LocalAdam(
                list(self.model.parameters()), lr=algo.lr, weight_decay=algo.weight_decay
            )
            if phone_state is not None:
                adam.load_state(phone_state, self._param_names)
            return adam
        return LocalSGD(list(self.model.parameters()), lr=algo.lr, momentum=algo.momentum)

    @property
    def _param_names(self) -> list[str]:
        return [n for n, _ in self.model.named_parameters()]

    def phone_state_after(self, optimizer: LocalOptimizer) -> Arrays | None:
        """The phone's state after a task: the model's local arrays and, with ``adam``, the
        optimizer's moments (None when there is neither)."""
        state = self.local_arrays() if self.local_keys else {}
        if isinstance(optimizer, LocalAdam):
            state.update(optimizer.state_arrays(self._param_names))
        return state or None

    def step_dropout(self, phone_id: int, task_id: int) -> StepDropoutSampler | None:
        """The scenario's training-time dropout for one task, drawn from a generator keyed by
        (seed, phone, task), so a re-run task drops the same rows; None without one."""
        rules = self.context.step_dropout
        if not rules:
            return None
        seed = int_seed(self.context.seed, phone_id, task_id, "step-dropout")
        return StepDropoutSampler(rules, torch.Generator().manual_seed(seed))

    def missing_distillation(self, data: LocalData) -> MissingDistillation | None:
        """``algorithm.missing_distill`` for this phone's shard (None when off). Only dropout
        that marks rows absent counts: a zeroed input is still encoded, so hiding its feature
        would not teach the path those rows take."""
        absent_dropout = [d.modality for d in self.context.step_dropout if d.mode == "absent"]
        return missing_distillation(
            self.context.algorithm, self.model.modalities, data.present, absent_dropout
        )

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
        self,
        payload: Arrays,
        data: LocalData,
        phone_id: int,
        base_version: int,
        task_id: int,
        phone_state: Arrays | None = None,
    ) -> ClientUpdate:
        self.load_model(payload, phone_state)
        rng = torch.Generator().manual_seed(int_seed(self.context.seed, phone_id, task_id, "train"))
        optimizer = self.make_optimizer(phone_state)
        with self.keyed_dropout(phone_id, task_id):
            loss = train_local(
                self.model,
                data,
                self.context.algorithm,
                rng,
                fill=self.train_fill(rng),
                extra_loss=self.extra_loss(payload),
                optimizer=optimizer,
                step_dropout=self.step_dropout(phone_id, task_id),
                distill=self.missing_distillation(data),
            )
        return ClientUpdate(
            phone_id=phone_id,
            base_version=base_version,
            num_samples=len(data),
            arrays=self.shared_arrays(),
            metrics={"train_loss": loss},
            phone_state=self.phone_state_after(optimizer),
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

    def begin_round(self, state: GlobalState, slots: Sequence[Slot]) -> Accumulator:
        """FedAvg's rule streams: each update is admitted and summed as it lands. A subclass
        that overrides ``aggregate`` (FedAvgM, SCAFFOLD, the authors' FedMobile) gets the
        buffering default, so its own rule is what runs."""
        if type(self).aggregate is not FedAvg.aggregate:
            return super().begin_round(state, slots)
        return FedAvgAccumulator(state, slots)

    def evaluate(
        self,
        state: GlobalState,
        test: MultimodalDataset,
        present: Mapping[str, np.ndarray],
        phone_state: Arrays | None = None,
    ) -> Evaluation:
        self.load_model(state.arrays, phone_state)
        return evaluate_model(self.model, test, present, fill=self.eval_fill(state))

    def pooled_phone_state(self, states: Iterable[Arrays]) -> Arrays | None:
        """The pooled test set is evaluated with the uniform mean, over the phones that have
        trained, of each local array (for BatchNorm: the phones' running means and variances).
        A choice, not the authors' (they evaluate each node on its own split): the server has
        no statistics of its own, and the mean keeps every phone's data in the estimate."""
        if not self.local_keys:
            return None
        sums: dict[str, np.ndarray] = {}
        count = 0
        for state in states:
            for k in self.local_keys:
                sums[k] = sums.get(k, 0.0) + state[k].astype(np.float64)
            count += 1
        if count == 0:
            return None
        return {k: (v / count).astype(np.float32) for k, v in sums.items()}


class FedAvgAccumulator(Accumulator):
    """``FedAvg.aggregate`` as updates arrive: the same admission per update and the same
    float64 sum in application order (``OrderedWeightedSum``, planned from the slots' shard
    sizes and staleness factors), so the result has the same bits. Updates are kept until the
    end only so that a round that departs from the plan (a rejected update) can fall back."""

    def __init__(self, state: GlobalState, slots: Sequence[Slot]) -> None:
        self.state = state
        planned = {
            p: s.samples * np.float64(s.staleness)
            for p, s in enumerate(slots)
            if np.isfinite(s.staleness) and s.staleness > 0
        }
        self._sum = OrderedWeightedSum(planned)
        self._kept: dict[int, tuple[ClientUpdate, np.float64]] = {}
        self._rejected = 0

    def add(self, position: int, update: ClientUpdate, staleness: float) -> None:
        if position in self._kept:
            raise ValueError(f"position {position} added twice")
        kept, factors, rejected = admit(self.state.arrays, [update], [staleness])
        self._rejected += rejected
        if kept:
            factor = factors[0]
            self._kept[position] = (update, factor)
            self._sum.add(position, update.arrays, update.num_samples * factor)

    def finish(self) -> AggregationResult:
        state = self.state
        metrics = {"rejected": self._rejected}
        ordered = [self._kept[p] for p in sorted(self._kept)]
        w = [u.num_samples * s for u, s in ordered]
        if not ordered or sum(w) <= 0:
            return AggregationResult(
                GlobalState(state.version + 1, state.arrays, state.info), metrics
            )
        arrays = self._sum.result()
        if arrays is None:
            arrays = weighted_average([u.arrays for u, _ in ordered], w)
        return AggregationResult(GlobalState(state.version + 1, arrays, state.info), metrics)

    @property
    def streamed(self) -> bool:
        """Whether the sum was made as updates arrived (False: it fell back at the end)."""
        return self._sum.complete


@contextmanager
def _seeded_global_rng(seed: int) -> Iterator[None]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
