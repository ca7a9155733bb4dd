"""Streaming aggregation in the server: updates are folded in as they land, with the bits of
the buffered path (today's ``aggregate`` over the whole round)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
from conftest_helpers import (  # type: ignore[import-not-found]
    comparable,
    dies_once_plugin,
    metrics_of,
)

from fedmobile_actors.algorithms.fedavg import FedAvg
from fedmobile_actors.algorithms.strategy import (
    Accumulator,
    AggregationResult,
    ClientUpdate,
    GlobalState,
    Slot,
    Strategy,
)
from fedmobile_actors.runtime.inprocess import InProcessBackend, InProcessHostPool
from fedmobile_actors.runtime.server import Server
from fedmobile_actors.scenario import Scenario
from fedmobile_actors.sim.tasks import Task

ALGORITHMS = ["fedavg", "fedprox", "fedmobile"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_streaming_gives_the_buffered_bits(
    make_tiny: Callable[..., Scenario], algorithm: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every round's metrics are those of buffering the round and calling ``aggregate``."""
    scenario = make_tiny(algorithm={"name": algorithm})
    streamed = metrics_of(InProcessBackend(scenario))
    monkeypatch.setattr(FedAvg, "begin_round", Strategy.begin_round)
    assert metrics_of(InProcessBackend(scenario)) == streamed


class ReversedPool(InProcessHostPool):
    """Results land in the reverse of dispatch order (later tasks finish first)."""

    async def train_many(self, tasks: Sequence[Task]) -> AsyncIterator[tuple[int, bytes]]:
        blobs = [await self.train(task) for task in tasks]
        for i in reversed(range(len(tasks))):
            yield i, blobs[i]


class Recording(Accumulator):
    def __init__(self, inner: Accumulator, log: list[int]) -> None:
        self.inner, self.log = inner, log

    def add(self, position: int, update: ClientUpdate, staleness: float) -> None:
        self.log.append(position)
        self.inner.add(position, update, staleness)

    def finish(self) -> AggregationResult:
        return self.inner.finish()


def test_updates_are_added_as_they_land_and_the_result_does_not_change(tiny: Scenario) -> None:
    reference = metrics_of(InProcessBackend(tiny))
    server = Server(tiny, ReversedPool(tiny))
    begin = server.strategy.begin_round
    positions: list[list[int]] = []

    def recording(state: GlobalState, slots: Sequence[Slot]) -> Accumulator:
        positions.append([])
        return Recording(begin(state, slots), positions[-1])

    server.strategy.begin_round = recording  # type: ignore[method-assign]
    rows: list[dict[str, Any]] = []
    while (out := asyncio.run(server.run_round())) is not None:
        rows.append(comparable(out.metrics))
    assert rows == reference
    assert any(len(p) > 1 for p in positions)
    assert all(p == sorted(p, reverse=True) for p in positions)  # arrival order, not plan order


ASYNC = {"policy": "async", "concurrency": 4, "buffer": 2, "max_staleness": 1, "rounds": 4}


@pytest.mark.integration
@pytest.mark.parametrize(
    ("algorithm", "rounds"),
    [("fedprox", {}), ("fedmobile", {}), ("fedmobile", ASYNC)],
    ids=["fedprox", "fedmobile", "fedmobile-async"],
)
def test_ray_batches_per_host_give_in_process_bits(
    ray_session: Any, make_tiny: Callable[..., Scenario], algorithm: str, rounds: dict[str, Any]
) -> None:
    """One streaming call per host per round (2 hosts), the next step dispatched ahead (async:
    its tasks on published versions before this step aggregates) give the in-process metrics."""
    from fedmobile_actors.runtime.ray_backend import RayBackend

    sections: dict[str, Any] = {"algorithm": {"name": algorithm}, "rounds": rounds}
    expected = metrics_of(InProcessBackend(make_tiny(**sections)))
    scenario = make_tiny(**sections, runtime={"backend": "ray", "hosts": 2})
    assert metrics_of(RayBackend(scenario)) == expected


@pytest.mark.integration
def test_a_host_dying_mid_batch_reruns_it_with_the_same_bits(
    ray_session: Any,
    make_tiny: Callable[..., Scenario],
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The host exits after streaming its first update of round 2; Ray restarts it and re-runs
    the batch, and every metric equals the in-process run's."""
    from fedmobile_actors.runtime.ray_backend import RayBackend

    name, marker = dies_once_plugin(tmp_path, "fedmobile_actors.algorithms.fedavg", "FedAvg")
    monkeypatch.syspath_prepend(str(tmp_path))
    shape = {
        "fleet": {"phones": 8, "failure_prob": 0.0},
        "rounds": {"rounds": 3, "clients_per_round": 8, "overcommit": 1.0},
    }
    expected = metrics_of(InProcessBackend(make_tiny(**shape)))
    algorithm = {"name": name, "options": {"marker": str(marker)}}
    scenario = make_tiny(**shape, algorithm=algorithm, runtime={"backend": "ray", "hosts": 2})
    assert metrics_of(RayBackend(scenario)) == expected
    assert marker.exists()  # a host really died
