"""The strategy interface: what a federated algorithm must say, on both sides of the network.

A strategy owns the math of the phone (``local_update``) and the server (``aggregate``); the
runtime only moves its arrays. Everything crossing the network is a flat ``dict[str, ndarray]``
(so the wire format, byte counts and checkpoints are uniform) plus a few float metrics.
Concrete strategies are small files beside this one, registered in ``registry.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from fedmobile_actors.data.dataset import LocalData, MultimodalDataset
from fedmobile_actors.scenario.schema import AlgorithmConfig, ModelConfig, StepDropout

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class AlgorithmContext:
    """Everything a strategy may know about the run, fixed for its whole length.

    ``learnable`` lists the modalities present on at least one phone: a modality absent on every
    phone cannot be learned by any generator, and strategies zero-fill it.
    ``proxy`` is the server's labelled proxy set (None when the scenario has none); phones never
    receive it. ``step_dropout`` is the scenario's training-time dropout (redrawn every step).
    ``leaky_test`` is the test set, handed over only when the strategy's ``reads_test_set`` says
    its configuration leaks it (``fedmobile_authors.selection_split: test_leaky``), so the leak
    is never silent.
    ``device`` is where this process trains ("cpu", or "cuda" on a host given a GPU; see
    ``algorithms/device.py``); a strategy that declares ``trains_on_gpu`` keeps its model there.
    """

    shapes: Mapping[str, tuple[int, int]]
    num_classes: int
    model: ModelConfig
    algorithm: AlgorithmConfig
    seed: int
    learnable: tuple[str, ...]
    proxy: MultimodalDataset | None = None
    step_dropout: tuple[StepDropout, ...] = ()
    leaky_test: MultimodalDataset | None = None
    device: str = "cpu"


@dataclass(frozen=True)
class ClientUpdate:
    """One phone's contribution to one aggregation."""

    phone_id: int
    base_version: int
    num_samples: int
    arrays: Arrays
    metrics: dict[str, float] = field(default_factory=dict)
    #: The phone's private state after this task (stateful strategies only). It stays on the
    #: phone: the wire never encodes it and no byte count includes it; the simulator's server
    #: keeps it in its phone-state store only so hosts can be restarted and runs resumed.
    phone_state: Arrays | None = None


@dataclass(frozen=True)
class GlobalState:
    """The server's model (and any server-side arrays, e.g. generators) at one version.

    ``info`` carries the few scalars a strategy remembers between rounds (e.g. last accuracy for
    FedMobile's filter rule); it is checkpointed with the arrays.
    """

    version: int
    arrays: Arrays
    info: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class AggregationResult:
    """The new global state and what the aggregation wants reported (clusters, Shapley, ...)."""

    state: GlobalState
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Slot:
    """One task a round will apply, as the server knows it at dispatch: its phone, the phone's
    shard size (the update's expected ``num_samples``) and its staleness factor."""

    phone_id: int
    samples: int
    staleness: float


class Accumulator(ABC):
    """One round's aggregation, fed update by update as they arrive (in any order).

    ``add`` is called at most once per position (the task's place in the round's application
    order) with a decoded update; ``finish`` is called once, after the last, and must give the
    same result as ``Strategy.aggregate`` over the added updates in position order: results do
    not depend on arrival order.
    """

    @abstractmethod
    def add(self, position: int, update: ClientUpdate, staleness: float) -> None:
        """Take the update of the round's ``position``-th task (staleness factor ``staleness``)."""

    @abstractmethod
    def finish(self) -> AggregationResult:
        """The round's aggregation over every added update, in position order."""


class BufferedAccumulator(Accumulator):
    """Keeps every update and calls ``strategy.aggregate`` at the end: the default, so a
    strategy that defines only ``aggregate`` (a plug-in, or one whose rule needs the whole
    round, such as FedMobile's clustering and Shapley weights) works unchanged."""

    def __init__(self, strategy: Strategy, state: GlobalState) -> None:
        self.strategy = strategy
        self.state = state
        self._added: dict[int, tuple[ClientUpdate, float]] = {}

    def add(self, position: int, update: ClientUpdate, staleness: float) -> None:
        if position in self._added:
            raise ValueError(f"position {position} added twice")
        self._added[position] = (update, staleness)

    def finish(self) -> AggregationResult:
        ordered = [self._added[p] for p in sorted(self._added)]
        return self.strategy.aggregate(self.state, [u for u, _ in ordered], [s for _, s in ordered])


@dataclass(frozen=True)
class Evaluation:
    """Accuracy and mean cross-entropy of the global model on one test pattern.

    ``correct`` (bool (N,), when the strategy provides it) says which test windows were right,
    so accuracy on any subset (one group of phones' test windows) costs no second pass.
    """

    accuracy: float
    loss: float
    correct: np.ndarray | None = field(default=None, compare=False, repr=False)


class Strategy(ABC):
    """Base class of every federated strategy (FedAvg, FedProx, FedMobile, ...)."""

    name: ClassVar[str]
    #: True when the strategy keeps per-phone state across tasks (optimizer moments, local
    #: BatchNorm statistics, control variates). The runtime then hands each task its phone's
    #: state and runs a phone's tasks of one step in order; stateless strategies cost nothing.
    stateful: ClassVar[bool] = False
    #: What the strategy needs of its model beyond the ``MultimodalNet`` contract, from
    #: ``models.registry.CAPABILITIES``; checked when a scenario is validated.
    model_needs: ClassVar[frozenset[str]] = frozenset()
    #: Whether ``local_update`` and ``evaluate`` work with the model on ``context.device`` when
    #: that is a GPU (every tensor they make follows the model's device). Each class says so in
    #: its own body; a subclass does not inherit it (``__init_subclass__``), because its own
    #: code may create CPU tensors. A strategy without it trains on the CPU.
    trains_on_gpu: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "trains_on_gpu" not in vars(cls):
            cls.trains_on_gpu = False

    def __init__(self, context: AlgorithmContext) -> None:
        self.context = context

    @classmethod
    def reads_test_set(cls, algorithm: AlgorithmConfig) -> bool:
        """Whether this configuration scores server decisions on the test set. Only then does
        the context carry ``leaky_test``: a strategy must say it leaks before it can."""
        return False

    @abstractmethod
    def initial_state(self) -> GlobalState:
        """Version 0 of the global state, a pure function of the context's seed."""

    def payload(self, state: GlobalState) -> Arrays:
        """The arrays phones download; by default everything the server holds."""
        return state.arrays

    def is_stateful(self) -> bool:
        """Whether this instance keeps per-phone state; a strategy may decide it from its model
        (FedAvg is stateful when the model has local arrays such as BatchNorm statistics)."""
        return self.stateful

    @abstractmethod
    def local_update(
        self,
        payload: Arrays,
        data: LocalData,
        phone_id: int,
        base_version: int,
        task_id: int,
        phone_state: Arrays | None = None,
    ) -> ClientUpdate:
        """Train on one phone's data from ``payload``; every draw keyed by (seed, phone, task).

        ``phone_state`` is the state the phone's previous trained task returned (None before its
        first); a stateful strategy returns the new state in ``ClientUpdate.phone_state``. The
        result must be a function of the arguments alone: a restarted host re-runs a task from
        the same input state and must give the same bytes.
        """

    @abstractmethod
    def aggregate(
        self, state: GlobalState, updates: Sequence[ClientUpdate], staleness: Sequence[float]
    ) -> AggregationResult:
        """Fold ``updates`` (in application order; ``staleness`` holds each one's staleness
        factor, 1.0 when fresh) into a new state whose version is ``state.version + 1``."""

    def begin_round(self, state: GlobalState, slots: Sequence[Slot]) -> Accumulator:
        """An accumulator for one round over ``slots`` (the round's tasks in application order),
        so the server can fold updates in while other phones still train. By default it buffers
        and calls ``aggregate``; a strategy whose rule allows it returns one that works as
        updates land (FedAvg's), with the same bits as ``aggregate``."""
        return BufferedAccumulator(self, state)

    @abstractmethod
    def evaluate(
        self,
        state: GlobalState,
        test: MultimodalDataset,
        present: Mapping[str, np.ndarray],
        phone_state: Arrays | None = None,
    ) -> Evaluation:
        """Accuracy of the global model on ``test`` with the given per-sample presence masks.

        ``phone_state``, when given, is applied on top of the global model first (e.g. a phone's
        own BatchNorm statistics, to evaluate the model that phone would run).
        """

    def pooled_phone_state(self, states: Iterable[Arrays]) -> Arrays | None:
        """The phone state the pooled (server-side) test set is evaluated with, from the states
        of the phones that have trained; None (the default) evaluates the global model alone."""
        return None

    def update_shapes(self, payload: Arrays) -> dict[str, tuple[str, tuple[int, ...]]]:
        """Expected (dtype, shape) of each array in an update; the wire rejects anything else.

        By default an update carries the same arrays as the payload.
        """
        return {name: (str(a.dtype), tuple(a.shape)) for name, a in payload.items()}
