"""The time model and the dropout rule (offline before upload end = dropped at that instant)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from fedmobile_actors.fleet import Fleet
from fedmobile_actors.scenario.schema import Constant, LogNormal
from fedmobile_actors.sim.tasks import Outcome, TaskCosts
from fedmobile_actors.sim.timing import TaskModel

FleetFactory = Callable[..., Fleet]  # the make_fleet fixture (conftest.py)


def _costs(n: int, samples: int = 20) -> TaskCosts:
    return TaskCosts(samples=[samples] * n, epochs=2, down_bytes=1000, up_bytes=[2000] * n)


def test_timing_adds_download_latency_compute_upload_latency(make_fleet: FleetFactory) -> None:
    """1000 B down at 8 kbit/s = 1 s; 20 samples x 2 epochs / 10 per s x 1.5 = 6 s; 2 s up."""
    model = TaskModel(make_fleet(1), _costs(1), Constant(value=1.5), seed=0)
    timing = model.timing(0, task_id=0, dispatch_s=100.0)
    assert (timing.download_s, timing.latency_s, timing.compute_s, timing.upload_s) == (
        1.0, 0.5, 6.0, 2.0,
    )  # fmt: skip
    assert timing.upload_end_s == 100.0 + 1 + 0.5 + 6 + 2 + 0.5 and timing.total_s == 10.0


def test_slowdown_is_drawn_per_task_and_repeats_for_the_same_task(
    make_fleet: FleetFactory,
) -> None:
    model = TaskModel(make_fleet(2), _costs(2), LogNormal(median=1.0, sigma=0.3), seed=0)
    slowdowns = {model.timing(0, task, 0.0).slowdown for task in range(20)}
    assert len(slowdowns) == 20
    assert model.timing(1, 7, 0.0) == model.timing(1, 7, 0.0)


def test_offline_before_upload_end_drops_the_task_at_that_instant(
    make_fleet: FleetFactory,
) -> None:
    """The task would end at 10 s; the phone goes offline at 7 s."""
    fleet = make_fleet(1, trace=[[(0.0, 7.0)]])
    fate = TaskModel(fleet, _costs(1), Constant(value=1.5), seed=0).fate(0, 0, 0.0, 0)
    assert fate.dropped is Outcome.DROPPED_OFFLINE and fate.end_s == 7.0


def test_offline_exactly_at_upload_end_still_reports(make_fleet: FleetFactory) -> None:
    fleet = make_fleet(1, trace=[[(0.0, 10.0)]])
    fate = TaskModel(fleet, _costs(1), Constant(value=1.5), seed=0).fate(0, 0, 0.0, 0)
    assert fate.dropped is None and fate.end_s == 10.0


def test_failures_hit_their_probability_at_instants_within_the_task(
    make_fleet: FleetFactory,
) -> None:
    model = TaskModel(make_fleet(1, failure_prob=0.3), _costs(1), Constant(value=1.5), seed=0)
    fates = [model.fate(0, task, 50.0, 0) for task in range(2000)]
    failed = [f for f in fates if f.dropped is Outcome.DROPPED_FAILED]
    assert abs(len(failed) / 2000 - 0.3) < 0.03
    instants = np.array([f.end_s for f in failed])
    assert instants.min() >= 50.0 and instants.max() < 60.0 and instants.std() > 2.0


def test_costs_must_cover_every_phone(make_fleet: FleetFactory) -> None:
    with pytest.raises(ValueError, match=r"TaskCosts\.samples has 2 entries for a fleet of 3"):
        TaskModel(make_fleet(3), _costs(2), Constant(value=1.0), seed=0)
