"""The strategy interface: what a federated algorithm must say, on both sides of the network.

A strategy owns the math of the phone (``local_update``) and the server (``aggregate``); the
runtime only moves its arrays. Everything crossing the network is a flat ``dict[str, ndarray]``
(so the wire format, byte counts and checkpoints are uniform) plus a few float metrics.
Concrete strategies are small files beside this one, registered in ``registry.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from fedmobile_actors.data.dataset import LocalData, MultimodalDataset
from fedmobile_actors.scenario.schema import AlgorithmConfig, ModelConfig

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class AlgorithmContext:
    """Everything a strategy may know about the run, fixed for its whole length.

    ``learnable`` lists the modalities present on at least one phone: a modality absent on every
    phone cannot be learned by any generator, and strategies zero-fill it.
    ``proxy`` is the server's labelled proxy set (None when the scenario has none); phones never
    receive it.
    """

    shapes: Mapping[str, tuple[int, int]]
    num_classes: int
    model: ModelConfig
    algorithm: AlgorithmConfig
    seed: int
    learnable: tuple[str, ...]
    proxy: MultimodalDataset | None = None


@dataclass(frozen=True)
class ClientUpdate:
    """One phone's contribution to one aggregation."""

    phone_id: int
    base_version: int
    num_samples: int
    arrays: Arrays
    metrics: dict[str, float] = field(default_factory=dict)


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

    def __init__(self, context: AlgorithmContext) -> None:
        self.context = context

    @abstractmethod
    def initial_state(self) -> GlobalState:
        """Version 0 of the global state, a pure function of the context's seed."""

    def payload(self, state: GlobalState) -> Arrays:
        """The arrays phones download; by default everything the server holds."""
        return state.arrays

    @abstractmethod
    def local_update(
        self, payload: Arrays, data: LocalData, phone_id: int, base_version: int, task_id: int
    ) -> ClientUpdate:
        """Train on one phone's data from ``payload``; every draw keyed by (seed, phone, task)."""

    @abstractmethod
    def aggregate(
        self, state: GlobalState, updates: Sequence[ClientUpdate], staleness: Sequence[float]
    ) -> AggregationResult:
        """Fold ``updates`` (in application order; ``staleness`` holds each one's staleness
        factor, 1.0 when fresh) into a new state whose version is ``state.version + 1``."""

    @abstractmethod
    def evaluate(
        self, state: GlobalState, test: MultimodalDataset, present: Mapping[str, np.ndarray]
    ) -> Evaluation:
        """Accuracy of the global model on ``test`` with the given per-sample presence masks."""

    def update_shapes(self, payload: Arrays) -> dict[str, tuple[str, tuple[int, ...]]]:
        """Expected (dtype, shape) of each array in an update; the wire rejects anything else.

        By default an update carries the same arrays as the payload.
        """
        return {name: (str(a.dtype), tuple(a.shape)) for name, a in payload.items()}
