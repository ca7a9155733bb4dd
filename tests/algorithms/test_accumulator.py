"""Streaming aggregation: accumulators fed in any arrival order give ``aggregate``'s bits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import pytest
from algo_setting import Setting, make_context, strategy_for

from fedmobile_actors.algorithms.aggregation import OrderedWeightedSum, weighted_average
from fedmobile_actors.algorithms.fedavg import FedAvg, FedAvgAccumulator
from fedmobile_actors.algorithms.strategy import (
    AggregationResult,
    BufferedAccumulator,
    ClientUpdate,
    GlobalState,
    Slot,
)

SHAPES = {"w": (7, 5), "b": (5,)}


def random_updates(count: int, seed: int = 0) -> list[ClientUpdate]:
    rng = np.random.default_rng(seed)
    return [
        ClientUpdate(
            phone_id=p,
            base_version=0,
            num_samples=int(rng.integers(1, 200)),
            arrays={k: rng.standard_normal(s).astype(np.float32) for k, s in SHAPES.items()},
        )
        for p in range(count)
    ]


def slots_of(updates: Sequence[ClientUpdate], staleness: Sequence[float]) -> list[Slot]:
    return [Slot(u.phone_id, u.num_samples, s) for u, s in zip(updates, staleness, strict=True)]


def feed(
    accumulator: object, updates: list[ClientUpdate], staleness: list[float], order: list[int]
) -> AggregationResult:
    for i in order:
        accumulator.add(i, updates[i], staleness[i])  # type: ignore[attr-defined]
    return accumulator.finish()  # type: ignore[attr-defined,no-any-return]


def same_bits(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return list(a) == list(b) and all(
        a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes() for k in a
    )


def test_ordered_sum_gives_weighted_averages_bits_in_any_arrival_order() -> None:
    updates = random_updates(40)
    weights = [u.num_samples * 0.75 for u in updates]
    expected = weighted_average([u.arrays for u in updates], weights)
    for seed in range(3):
        total = OrderedWeightedSum(dict(enumerate(weights)))
        for i in np.random.default_rng(seed).permutation(len(updates)):
            total.add(int(i), updates[i].arrays, weights[i])
        result = total.result()
        assert result is not None and same_bits(result, expected)


def test_ordered_sum_gives_up_when_arrivals_differ_from_the_plan() -> None:
    updates = random_updates(3)
    total = OrderedWeightedSum({0: 1.0, 1: 1.0, 2: 1.0})
    total.add(0, updates[0].arrays, 1.0)
    total.add(2, updates[2].arrays, 2.0)  # another weight than planned
    assert total.result() is None


@pytest.fixture(scope="module")
def fedavg(setting: Setting) -> FedAvg:
    strategy = strategy_for(setting, "fedavg")
    assert isinstance(strategy, FedAvg)
    return strategy


def state_for(strategy: FedAvg) -> GlobalState:
    return GlobalState(3, {k: np.zeros(s, np.float32) for k, s in SHAPES.items()})


def test_fedavg_streams_with_the_bits_of_aggregate(fedavg: FedAvg) -> None:
    """Shuffled arrivals, stale factors and a zero-weight update: the same bits, summed as the
    updates arrived (no fall-back)."""
    updates = random_updates(30, seed=1)
    staleness = [1.0, 0.5, 0.0, 0.25] * 7 + [1.0, 1.0]
    state = state_for(fedavg)
    expected = fedavg.aggregate(state, updates, staleness)
    accumulator = fedavg.begin_round(state, slots_of(updates, staleness))
    assert isinstance(accumulator, FedAvgAccumulator)
    order = np.random.default_rng(5).permutation(len(updates)).tolist()
    result = feed(accumulator, updates, staleness, order)
    assert accumulator.streamed
    assert same_bits(result.state.arrays, expected.state.arrays)
    assert result.state.version == expected.state.version and result.metrics == expected.metrics


def test_a_rejected_update_falls_back_to_the_same_bits_and_count(fedavg: FedAvg) -> None:
    updates = random_updates(6, seed=2)
    bad = {k: np.full(s, np.nan, np.float32) for k, s in SHAPES.items()}
    updates[3] = ClientUpdate(3, 0, updates[3].num_samples, bad)
    staleness = [1.0] * 6
    state = state_for(fedavg)
    expected = fedavg.aggregate(state, updates, staleness)
    accumulator = fedavg.begin_round(state, slots_of(updates, staleness))
    result = feed(accumulator, updates, staleness, [5, 0, 3, 1, 4, 2])
    assert isinstance(accumulator, FedAvgAccumulator) and not accumulator.streamed
    assert same_bits(result.state.arrays, expected.state.arrays)
    assert result.metrics == expected.metrics == {"rejected": 1}


def test_a_round_without_updates_keeps_the_model(fedavg: FedAvg) -> None:
    state = state_for(fedavg)
    result = fedavg.begin_round(state, [Slot(0, 10, 1.0)]).finish()
    assert result.state.version == 4 and same_bits(result.state.arrays, state.arrays)


class OnlyAggregate(FedAvg):
    """A plug-in that defines only ``aggregate`` (here: the plain mean, ignoring samples)."""

    name = "only-aggregate"
    seen: ClassVar[list[list[int]]] = []

    def aggregate(
        self, state: GlobalState, updates: Sequence[ClientUpdate], staleness: Sequence[float]
    ) -> AggregationResult:
        self.seen.append([u.phone_id for u in updates])
        arrays = weighted_average([u.arrays for u in updates], [1.0] * len(updates))
        return AggregationResult(GlobalState(state.version + 1, arrays))


def test_a_strategy_with_only_aggregate_gets_updates_in_position_order(setting: Setting) -> None:
    strategy = OnlyAggregate(make_context(setting, "fedavg"))
    updates = random_updates(5, seed=3)
    state = state_for(strategy)
    accumulator = strategy.begin_round(state, slots_of(updates, [1.0] * 5))
    assert isinstance(accumulator, BufferedAccumulator)
    result = feed(accumulator, updates, [1.0] * 5, [4, 2, 0, 3, 1])
    assert strategy.seen == [[0, 1, 2, 3, 4]]
    expected = weighted_average([u.arrays for u in updates], [1.0] * 5)
    assert same_bits(result.state.arrays, expected)
