"""Speed of the pure layers on a large fleet: building 5,000 phones, and planning 50 deadline
rounds on them. No training and no Ray: this is the simulator's own overhead per run.

These were wall-clock assertions in the tests (under 0.5 s and under 5 s); a shared machine makes
such assertions flaky, so the figures are printed here instead, the median of ``--repeats``.

    python -m benchmarks.bench_sim --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time

from fedmobile_actors.fleet import build_fleet
from fedmobile_actors.scenario.schema import Scenario
from fedmobile_actors.sim import make_policy
from fedmobile_actors.sim.tasks import TaskCosts

PHONES = 5000
MODALITIES = ("acc", "gyro", "mag")


def fleet_scenario() -> Scenario:
    """The old fleet test's scenario: Markov availability, a missing modality, absences."""
    return Scenario.model_validate(
        {
            "data": {
                "source": {"kind": "synthetic", "modalities": [{"name": n} for n in MODALITIES]}
            },
            "fleet": {"phones": PHONES, "availability": {"model": "markov"}},
            "modalities": {"missing": [{"modality": "acc", "rate": 0.8}], "absence_prob": 0.2},
        }
    )


def policy_scenario() -> Scenario:
    """The old policy test's scenario: 50 rounds of 50 phones, overcommit 1.3, 5% failures."""
    return Scenario.model_validate(
        {
            "fleet": {"phones": PHONES, "availability": {"model": "markov"}, "failure_prob": 0.05},
            "rounds": {"rounds": 50, "clients_per_round": 50, "overcommit": 1.3},
        }
    )


def time_fleet_build() -> float:
    scenario = fleet_scenario()
    start = time.perf_counter()
    build_fleet(scenario, MODALITIES)
    return time.perf_counter() - start


def time_policy() -> float:
    scenario = policy_scenario()
    fleet = build_fleet(scenario, ("acc", "gyro"))
    costs = TaskCosts([200] * PHONES, 1, 400_000, [400_000] * PHONES)
    start = time.perf_counter()
    steps = list(make_policy(scenario, fleet, costs).steps())
    elapsed = time.perf_counter() - start
    assert sum(s.dispatched for s in steps) == 50 * 65
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions of each")
    args = parser.parse_args()
    time_fleet_build()  # warm imports and caches once
    for label, fn in (
        (f"build a fleet of {PHONES} phones", time_fleet_build),
        (f"plan 50 deadline rounds on {PHONES} phones", time_policy),
    ):
        runs = [fn() for _ in range(args.repeats)]
        print(f"{label:<42} median {statistics.median(runs):.3f} s  max {max(runs):.3f} s")


if __name__ == "__main__":
    main()
