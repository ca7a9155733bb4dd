"""Buffered async (FedBuff): staleness values and weights, max_staleness drops, concurrency.

Hand fleet (conftest.py) with no payload bytes: a phone with s samples ends 1 + s/10 seconds
after dispatch (two 0.5 s latencies plus compute). With concurrency = fleet size every idle phone
is re-dispatched at once, so the whole run can be computed by hand.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from fedmobile_actors.fleet import Fleet, build_fleet
from fedmobile_actors.scenario.schema import Constant, RoundsConfig, Scenario
from fedmobile_actors.sim import make_policy
from fedmobile_actors.sim.async_buffer import AsyncPolicy
from fedmobile_actors.sim.tasks import Outcome, Step, TaskCosts
from fedmobile_actors.sim.timing import TaskModel

FleetFactory = Callable[..., Fleet]  # the make_fleet fixture (conftest.py)


def _steps(fleet: Fleet, samples: Sequence[int], **rounds: object) -> list[Step]:
    costs = TaskCosts(samples, 1, 0, [0] * len(samples))
    model = TaskModel(fleet, costs, Constant(value=1.0), seed=0)
    config = RoundsConfig(policy="async", **rounds)
    return list(AsyncPolicy(fleet, model, config, seed=0).steps())


def _applied(step: Step) -> list[tuple[int, float, int, int, float]]:
    return [(t.phone_id, t.end_s, t.base_version, t.staleness, t.weight) for t in step.applied]


HAND = {"concurrency": 3, "buffer": 2, "staleness": "polynomial", "staleness_exponent": 1.0}
SAMPLES = [10, 20, 40]  # phones end 2, 3, 5 s after dispatch


def test_staleness_and_weights_of_applied_updates(make_fleet: FleetFactory) -> None:
    steps = _steps(make_fleet(3), SAMPLES, rounds=3, **HAND)
    assert [(s.version, s.start_s, s.end_s, s.dispatched) for s in steps] == [
        (1, 0.0, 3.0, 4),  # three at 0 s, phone 0 again at 2 s
        (2, 3.0, 5.0, 2),  # phone 1 at 3 s (base 1), phone 0 at 4 s (base 1)
        (3, 5.0, 6.0, 2),  # phone 2 at 5 s (base 2), phone 0 at 6 s (base 2)
    ]
    assert _applied(steps[0]) == [(0, 2.0, 0, 0, 1.0), (1, 3.0, 0, 0, 1.0)]
    assert _applied(steps[1]) == [(0, 4.0, 0, 1, 0.5), (2, 5.0, 0, 1, 0.5)]
    # Phones 0 and 1 both arrive at 6 s: applied in phone-id order.
    assert _applied(steps[2]) == [(0, 6.0, 1, 1, 0.5), (1, 6.0, 1, 1, 0.5)]


def test_updates_staler_than_max_staleness_are_dropped_as_stale(make_fleet: FleetFactory) -> None:
    steps = _steps(make_fleet(3), SAMPLES, rounds=2, max_staleness=0, **HAND)
    second = steps[1]
    assert [(t.phone_id, t.end_s, t.outcome, t.staleness, t.weight) for t in second.tasks] == [
        (0, 4.0, Outcome.STALE, 1, 0.0),
        (2, 5.0, Outcome.STALE, 1, 0.0),
        (0, 6.0, Outcome.REPORTED, 0, 1.0),
        (1, 6.0, Outcome.REPORTED, 0, 1.0),
    ]
    assert second.end_s == 6.0 and [t.phone_id for t in second.applied] == [0, 1]


def test_no_phone_online_retries_every_idle_retry_s(make_fleet: FleetFactory) -> None:
    fleet = make_fleet(2, trace=[[(100.0, 1e9)]] * 2)
    steps = _steps(fleet, [10, 10], rounds=1, concurrency=2, buffer=2, idle_retry_s=60)
    assert [t.dispatch_s for t in steps[0].tasks] == [120.0, 120.0]
    assert steps[0].end_s == 122.0


def test_a_fleet_that_never_comes_online_still_ends_with_empty_steps(
    make_fleet: FleetFactory,
) -> None:
    fleet = make_fleet(2, trace=[[(5000.0, 5001.0)]] * 2)
    steps = _steps(fleet, [10, 10], rounds=2, idle_retry_s=30, deadline_s=100)
    assert [(s.version, s.start_s, s.end_s, s.applied, s.dispatched) for s in steps] == [
        (1, 0.0, 120.0, (), 0),
        (2, 120.0, 240.0, (), 0),
    ]


def _scenario_run(rounds: int) -> tuple[Fleet, list[Step]]:
    scenario = Scenario.model_validate(
        {
            "seed": 11,
            "fleet": {
                "phones": 300,
                "availability": {"model": "markov", "mean_on_s": 200, "mean_off_s": 100},
                "failure_prob": 0.1,
            },
            "rounds": {"policy": "async", "rounds": rounds, "concurrency": 20, "buffer": 4,
                       "max_staleness": 6, "staleness": "hinge", "staleness_hinge": 2},
        }
    )  # fmt: skip
    fleet = build_fleet(scenario, ("acc", "gyro"))
    costs = TaskCosts([150] * 300, 1, 80_000, [80_000] * 300)
    return fleet, list(make_policy(scenario, fleet, costs).steps())


def test_concurrency_is_kept_and_no_phone_holds_two_tasks() -> None:
    _, short = _scenario_run(40)
    _, long = _scenario_run(80)  # same prefix; its tasks cover everything in flight at step 40
    assert long[:40] == short
    tasks = [t for s in long for t in s.tasks]
    horizon = short[-1].end_s
    for d in sorted({t.dispatch_s for t in tasks if t.dispatch_s <= horizon}):
        assert sum(t.dispatch_s <= d < t.end_s for t in tasks) == 20
    by_phone: dict[int, list[tuple[float, float]]] = {}
    for t in tasks:
        by_phone.setdefault(t.phone_id, []).append((t.dispatch_s, t.end_s))
    for spans in by_phone.values():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


def test_outcomes_weights_and_ids_follow_the_rules_on_a_real_fleet() -> None:
    fleet, steps = _scenario_run(40)
    tasks = [t for s in steps for t in s.tasks]
    by_id = sorted(tasks, key=lambda t: t.task_id)
    ids = [t.task_id for t in by_id]
    assert len(set(ids)) == len(ids) and ids[-1] < sum(s.dispatched for s in steps)
    assert [t.dispatch_s for t in by_id] == sorted(t.dispatch_s for t in by_id)
    version = 0
    for step in steps:
        assert len(step.applied) == 4 and step.version == version + 1
        for t in step.applied:
            assert t.staleness == version - t.base_version <= 6
            assert t.weight == (1.0 if t.staleness <= 2 else 1 / (0.5 * (t.staleness - 2) + 1))
        assert [(t.end_s, t.phone_id) for t in step.applied] == sorted(
            (t.end_s, t.phone_id) for t in step.applied
        )
        version = step.version
    outcomes = {t.outcome for t in tasks}
    assert {Outcome.REPORTED, Outcome.DROPPED_FAILED, Outcome.DROPPED_OFFLINE} <= outcomes
    assert all(t.staleness > 6 for t in tasks if t.outcome is Outcome.STALE)
    for t in tasks:
        assert fleet.availability(t.phone_id).online_at(t.dispatch_s, t.base_version)


def test_steps_twice_give_the_same_steps() -> None:
    policy_steps = _scenario_run(15)[1]
    assert policy_steps == _scenario_run(15)[1]
