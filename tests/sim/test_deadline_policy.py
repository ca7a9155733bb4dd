"""Deadline rounds: who is dropped, who is late, when a round closes, applied order, overcommit.

Hand fleet (conftest.py): 1,000 bytes take 1 s each way, 0.5 s latency each way, 10 samples/s,
constant slowdown 1; so a phone with s samples ends 3 + s/10 seconds after dispatch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from fedmobile_actors.fleet import Fleet, build_fleet
from fedmobile_actors.scenario.schema import Constant, RoundsConfig, Scenario
from fedmobile_actors.sim import make_policy
from fedmobile_actors.sim.deadline import DeadlinePolicy, dispatch_count
from fedmobile_actors.sim.tasks import Outcome, Step, TaskCosts
from fedmobile_actors.sim.timing import TaskModel

FleetFactory = Callable[..., Fleet]  # the make_fleet fixture (conftest.py)
ON = [(0.0, 1e9)]


def _steps(fleet: Fleet, samples: Sequence[int], **rounds: object) -> list[Step]:
    costs = TaskCosts(samples, 1, 1000, [1000] * len(samples))
    model = TaskModel(fleet, costs, Constant(value=1.0), seed=0)
    return list(DeadlinePolicy(fleet, model, RoundsConfig(**rounds), seed=0).steps())


def _summary(step: Step) -> list[tuple[int, str, float]]:
    return [(t.phone_id, t.outcome.value, t.end_s) for t in step.tasks]


@pytest.fixture
def five(make_fleet: FleetFactory) -> Fleet:
    """Phones 0-3 always online; phone 4 goes offline at 3 s for good."""
    return make_fleet(5, trace=[ON, ON, ON, ON, [(0.0, 3.0)]])


SAMPLES = [10, 30, 10, 80, 20]  # ends at 4, 6, 4, 11, 5 s after dispatch


def test_first_reports_close_the_round_and_the_rest_are_late_or_dropped(five: Fleet) -> None:
    steps = _steps(five, SAMPLES, rounds=2, clients_per_round=2, overcommit=2.5, deadline_s=10)
    first = steps[0]
    assert (first.version, first.start_s, first.end_s, first.dispatched) == (1, 0.0, 4.0, 5)
    assert _summary(first) == [
        (4, "dropped_offline", 3.0),
        (0, "reported", 4.0),
        (2, "reported", 4.0),
        (1, "late", 6.0),
        (3, "late", 11.0),
    ]
    assert [(t.phone_id, t.task_id) for t in first.applied] == [(0, 0), (2, 2)]  # tie: phone id
    assert all(t.base_version == 0 and t.down_bytes == 1000 for t in first.tasks)


def test_next_round_starts_at_the_close_with_only_online_phones(five: Fleet) -> None:
    steps = _steps(five, SAMPLES, rounds=2, clients_per_round=2, overcommit=2.5, deadline_s=10)
    second = steps[1]
    assert (second.start_s, second.end_s, second.dispatched) == (4.0, 8.0, 4)
    assert sorted(t.task_id for t in second.tasks) == [5, 6, 7, 8]
    assert [t.phone_id for t in second.applied] == [0, 2]
    assert all(t.base_version == 1 and t.dispatch_s == 4.0 for t in second.tasks)


def test_busy_late_phones_are_not_selected_until_their_late_task_ends(five: Fleet) -> None:
    """late_phones=busy: phones 1 and 3, late in round 1 (until 6 s and 11 s), sit out round 2
    (dispatched at 4 s); with the default they are dispatched again."""
    common = {"rounds": 2, "clients_per_round": 2, "overcommit": 2.5, "deadline_s": 10}
    busy = _steps(five, SAMPLES, late_phones="busy", **common)[1]
    assert sorted(t.phone_id for t in busy.tasks) == [0, 2]
    abandon = _steps(five, SAMPLES, **common)[1]
    assert sorted(t.phone_id for t in abandon.tasks) == [0, 1, 2, 3]


def test_too_few_reports_by_the_deadline_close_at_the_deadline(five: Fleet) -> None:
    step = _steps(five, SAMPLES, rounds=1, clients_per_round=3, overcommit=2, deadline_s=5)[0]
    assert step.end_s == 5.0 and [t.phone_id for t in step.applied] == [0, 2]
    assert {t.phone_id for t in step.tasks if t.outcome is Outcome.LATE} == {1, 3}


def test_a_silent_drop_keeps_the_round_open_until_the_deadline(make_fleet: FleetFactory) -> None:
    fleet = make_fleet(2, trace=[ON, [(0.0, 3.0)]])
    step = _steps(fleet, [10, 20], rounds=1, clients_per_round=2, deadline_s=10)[0]
    assert step.end_s == 10.0 and [t.phone_id for t in step.applied] == [0]


def test_when_every_task_drops_the_round_closes_at_the_deadline(make_fleet: FleetFactory) -> None:
    fleet = make_fleet(3, trace=[[(0.0, 2.0)]] * 3)
    step = _steps(fleet, [10] * 3, rounds=1, clients_per_round=2, overcommit=1.5, deadline_s=10)[0]
    assert step.end_s == 10.0 and step.applied == ()
    assert [(t.outcome, t.end_s) for t in step.tasks] == [(Outcome.DROPPED_OFFLINE, 2.0)] * 3


def test_when_every_dispatched_phone_reported_the_round_closes_at_the_last_report(
    make_fleet: FleetFactory,
) -> None:
    step = _steps(make_fleet(2), [10, 30], rounds=1, clients_per_round=5, deadline_s=100)[0]
    assert step.end_s == 6.0 and len(step.applied) == 2


def test_no_phone_online_retries_every_idle_retry_then_dispatches(
    make_fleet: FleetFactory,
) -> None:
    fleet = make_fleet(2, trace=[[(100.0, 1e9)]] * 2)
    steps = _steps(fleet, [10, 10], rounds=1, clients_per_round=1, idle_retry_s=30, deadline_s=999)
    step = steps[0]
    assert step.start_s == 0.0 and {t.dispatch_s for t in step.tasks} == {120.0}
    assert step.end_s == 124.0


def test_no_phone_online_for_a_whole_deadline_gives_empty_steps(make_fleet: FleetFactory) -> None:
    fleet = make_fleet(2, trace=[[(5000.0, 5001.0)]] * 2)
    steps = _steps(fleet, [10, 10], rounds=2, idle_retry_s=30, deadline_s=100)
    assert [(s.version, s.start_s, s.end_s, s.dispatched, s.tasks) for s in steps] == [
        (1, 0.0, 100.0, 0, ()),
        (2, 100.0, 200.0, 0, ()),
    ]


def test_overcommit_dispatches_more_and_applies_exactly_clients_per_round(
    make_fleet: FleetFactory,
) -> None:
    assert dispatch_count(RoundsConfig(clients_per_round=10, overcommit=1.1)) == 11
    samples = [10 + 3 * p for p in range(50)]
    steps = _steps(make_fleet(50), samples, rounds=5, clients_per_round=10, overcommit=1.5)
    for step in steps:
        assert step.dispatched == 15 and len(step.applied) == 10
        assert sum(t.outcome is Outcome.LATE for t in step.tasks) == 5
        late_ends = [t.end_s for t in step.tasks if t.outcome is Outcome.LATE]
        assert min(late_ends) >= step.end_s == step.applied[-1].end_s
    assert len({frozenset(t.phone_id for t in s.tasks) for s in steps}) == 5  # reselected


def _bernoulli_run(phones: int, p_online: float) -> tuple[Fleet, list[Step]]:
    scenario = Scenario.model_validate(
        {
            "seed": 3,
            "fleet": {
                "phones": phones,
                "availability": {"model": "bernoulli", "p_online": p_online},
                "failure_prob": 0.2,
            },
            "rounds": {"rounds": 30, "clients_per_round": 8, "overcommit": 1.5},
        }
    )
    fleet = build_fleet(scenario, ("acc", "gyro"))
    costs = TaskCosts([100] * phones, 1, 50_000, [50_000] * phones)
    return fleet, list(make_policy(scenario, fleet, costs).steps())


def test_only_phones_online_at_dispatch_are_selected() -> None:
    fleet, steps = _bernoulli_run(200, 0.5)
    for step in steps:
        assert step.dispatched == 12 == len(step.tasks)
        for task in step.tasks:
            assert fleet.availability(task.phone_id).online_at(task.dispatch_s, task.base_version)


def test_fewer_online_phones_than_wanted_are_all_dispatched() -> None:
    fleet, steps = _bernoulli_run(10, 0.5)
    for r, step in enumerate(steps):
        online = {p for p in range(10) if fleet.availability(p).online_at(0.0, r)}
        assert {t.phone_id for t in step.tasks} == online or len(online) > 12


def test_steps_twice_give_the_same_steps_and_ids_increase() -> None:
    scenario = Scenario.model_validate(
        {"fleet": {"phones": 100, "availability": {"model": "markov", "mean_on_s": 30,
         "mean_off_s": 30}, "failure_prob": 0.1}, "rounds": {"rounds": 20}}
    )  # fmt: skip
    costs = TaskCosts([200] * 100, 2, 100_000, [100_000] * 100)
    policy = make_policy(scenario, build_fleet(scenario, ("acc",)), costs)
    first = list(policy.steps())
    assert first == list(policy.steps())
    assert first == list(make_policy(scenario, build_fleet(scenario, ("acc",)), costs).steps())
    ids = [t.task_id for s in first for t in sorted(s.tasks, key=lambda t: t.task_id)]
    assert ids == list(range(len(ids)))
    outcomes = {t.outcome for s in first for t in s.tasks}
    assert {Outcome.REPORTED, Outcome.DROPPED_OFFLINE, Outcome.DROPPED_FAILED} <= outcomes


def test_five_thousand_phones_dispatch_the_overcommitted_count_every_round() -> None:
    """10 rounds of 50 x 1.3 on 5,000 phones (its speed: benchmarks/bench_sim.py)."""
    scenario = Scenario.model_validate(
        {"fleet": {"phones": 5000, "availability": {"model": "markov"}, "failure_prob": 0.05},
         "rounds": {"rounds": 10, "clients_per_round": 50, "overcommit": 1.3}}
    )  # fmt: skip
    fleet = build_fleet(scenario, ("acc", "gyro"))
    costs = TaskCosts([200] * 5000, 1, 400_000, [400_000] * 5000)
    steps = list(make_policy(scenario, fleet, costs).steps())
    assert [s.dispatched for s in steps] == [65] * 10
