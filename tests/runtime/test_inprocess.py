"""The server and hosts without Ray: rounds, determinism, rejection of bad updates."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import asdict

import pytest
from conftest_helpers import metrics_of  # type: ignore[import-not-found]

from fedmobile_actors.runtime.inprocess import InProcessBackend, InProcessHostPool
from fedmobile_actors.runtime.server import Server
from fedmobile_actors.scenario import Scenario
from fedmobile_actors.sim.tasks import Task


def test_a_run_produces_one_evaluated_row_per_round(tiny: Scenario) -> None:
    """Three rounds give three rows with accuracies in [0, 1] and reports <= dispatched."""
    rows = metrics_of(InProcessBackend(tiny))
    assert [r["round"] for r in rows] == [1, 2, 3]
    for row in rows:
        assert 0.0 <= row["accuracy_full"] <= 1.0
        assert row["reported"] <= row["dispatched"]
        assert row["bytes_down"] > 0 and row["bytes_up"] > 0
    assert rows[0]["virtual_time_s"] < rows[-1]["virtual_time_s"]


def test_same_scenario_and_seed_give_identical_metrics(tiny: Scenario) -> None:
    """Two runs of one scenario agree on every figure but wall time."""
    assert metrics_of(InProcessBackend(tiny)) == metrics_of(InProcessBackend(tiny))


def test_one_host_or_three_hosts_give_identical_metrics(make_tiny: Callable[..., Scenario]) -> None:
    """Placement of phones on hosts does not change a single number."""
    one = metrics_of(InProcessBackend(make_tiny(runtime={"hosts": 1})))
    three = metrics_of(InProcessBackend(make_tiny(runtime={"hosts": 3})))
    assert one == three


def test_another_seed_gives_other_metrics(make_tiny: Callable[..., Scenario]) -> None:
    """The seed reaches the numbers (a guard against a seed that is silently ignored)."""
    a = metrics_of(InProcessBackend(make_tiny(seed=1)))
    b = metrics_of(InProcessBackend(make_tiny(seed=2)))
    assert a != b


class CorruptingPool(InProcessHostPool):
    """Hosts whose update for one phone is damaged in transit."""

    def __init__(self, scenario: Scenario, victim: int, damage: str) -> None:
        super().__init__(scenario)
        self.victim, self.damage = victim, damage

    async def train(self, task: Task) -> bytes:
        blob = await super().train(task)
        if task.phone_id != self.victim:
            return blob
        if self.damage == "truncate":
            return blob[: len(blob) // 2]
        # Flip bytes inside an array: the shape survives, NaNs may appear or values change.
        return blob[:-64] + b"\xff" * 64


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_corrupt_update_is_rejected_and_counted(tiny: Scenario, damage: str) -> None:
    """A damaged update is counted as rejected and the round still aggregates the others."""
    clean = Server(tiny, InProcessHostPool(tiny))
    first = asyncio.run(clean.run_round())
    assert first is not None
    victim = min(t["phone_id"] for t in first.events if t["outcome"] == "reported")
    server = Server(tiny, CorruptingPool(tiny, victim, damage))
    out = asyncio.run(server.run_round())
    assert out is not None
    if damage == "truncate":
        assert out.metrics.rejected == 1
        assert out.metrics.reported == first.metrics.reported - 1
    else:
        # Trailing garbage lands in the metrics map or an array: either rejected or decoded.
        assert out.metrics.rejected + out.metrics.reported == first.metrics.reported
    assert not math.isnan(out.metrics.accuracy_full)


def test_checkpoint_restores_the_exact_state(tiny: Scenario) -> None:
    """A server restored from round 2's checkpoint produces round 3 exactly as an unbroken run."""
    unbroken = InProcessBackend(tiny)
    rows = [unbroken.run_round() for _ in range(3)]
    first = InProcessBackend(tiny)
    first.run_round()
    first.run_round()
    resumed = InProcessBackend(tiny, checkpoint=first.checkpoint())
    third = resumed.run_round()
    assert third is not None and rows[2] is not None
    a, b = asdict(third.metrics), asdict(rows[2].metrics)
    a.pop("wall_time_s")
    b.pop("wall_time_s")
    assert a == b


def test_async_policy_runs_and_is_placement_independent(make_tiny: Callable[..., Scenario]) -> None:
    """Buffered async rounds aggregate `buffer` updates each, and 1 or 2 hosts agree exactly."""
    rounds = {"policy": "async", "concurrency": 4, "buffer": 2, "max_staleness": 1, "rounds": 4}
    one = metrics_of(InProcessBackend(make_tiny(rounds=rounds, runtime={"hosts": 1})))
    two = metrics_of(InProcessBackend(make_tiny(rounds=rounds, runtime={"hosts": 2})))
    assert one == two
    assert [r["round"] for r in one] == [1, 2, 3, 4]
    # Every aggregation folds exactly `buffer` usable updates; stale arrivals are dropped.
    assert all(r["reported"] == 2 for r in one)


def test_rows_carry_validation_accuracy_and_fedmobiles_server_step(
    make_tiny: Callable[..., Scenario],
) -> None:
    """With a proxy set, every evaluated row has validation accuracies; a FedMobile run's rows
    also say what its server step computed (clusters, Shapley values, the fill's error)."""
    scenario = make_tiny(
        data={"proxy_fraction": 0.2},
        algorithm={"name": "fedmobile", "fedmobile": {"probe_size": 8, "generator_steps": 2}},
    )
    rows = metrics_of(InProcessBackend(scenario))
    for row in rows:
        assert 0.0 <= row["accuracy_val_missing"] <= 1.0
        assert 0.0 <= row["accuracy_val_full"] <= 1.0
        assert sum(row["cluster_sizes"]) == row["reported"]
        assert len(row["shapley_values"]) == len(row["shapley_weights"]) == row["clusters"]
        assert math.isfinite(row["fill_error"]) and row["fill_error"] > 0
        assert 1 / row["reported"] <= row["model_weight_max"] <= 1.0


def test_without_a_proxy_set_validation_accuracy_is_not_measured(tiny: Scenario) -> None:
    rows = metrics_of(InProcessBackend(tiny))
    assert all(r["accuracy_val_missing"] is None for r in rows)
    assert all(r["fill_error"] is None and r["cluster_sizes"] == () for r in rows)
    assert all(r["model_weight_max"] is None for r in rows)  # not a FedMobile run
