"""The fleet before and after it became columns (issue 19): run this against both trees.

It uses only what both have (``build_fleet``, ``make_policy``, ``TaskCosts``), so the same
script measures the object build of commit 128760b and the column build of today:

    mkdir -p /tmp/old && git archive 128760b fedmobile_actors | tar -x -C /tmp/old
    (cd /tmp && PYTHONPATH=/tmp/old:$OLDPWD python -m benchmarks.fleet_compare) > before.txt
    PYTHONPATH=. python -m benchmarks.fleet_compare > after.txt
    diff <(grep steps before.txt) <(grep steps after.txt)     # no output: the same steps

(``cd /tmp``: ``python -m`` puts the working directory first on the path, which would import
today's package instead of the old one; the script prints which package it ran on, to stderr.)

It prints, per fleet size, the build time, the memory the fleet keeps (tracemalloc) and its
pickled bytes per phone; then, per policy trace (deadline and async over Markov, Bernoulli,
diurnal, trace and correlated-class fleets), a hash of every step the policy produces.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

import fedmobile_actors
from fedmobile_actors.fleet import build_fleet
from fedmobile_actors.scenario.loader import load_scenario
from fedmobile_actors.scenario.schema import Scenario
from fedmobile_actors.sim import make_policy
from fedmobile_actors.sim.tasks import TaskCosts

#: Not imported from bench_sim: that module needs today's tree, this one runs on both.
REPO_SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
MODALITIES = ("acc", "gyro", "mag")

TRACES = (
    ("fleet_500.yaml", ()),
    ("trace_replay.yaml", ()),
    ("study_correlated_availability.yaml", ()),
    (
        "quickstart.yaml",
        (
            "fleet.availability.model=bernoulli",
            "fleet.availability.p_online=0.3",
            "rounds.rounds=40",
            "fleet.failure_prob=0.1",
        ),
    ),
    (
        "async_vs_deadline.yaml",
        ("rounds.policy=async", "fleet.availability.model=markov", "rounds.rounds=30"),
    ),
    (
        "quickstart.yaml",
        (
            "fleet.availability.model=diurnal",
            "fleet.availability.slot_s=60",
            "fleet.availability.period_s=3600",
            "rounds.rounds=30",
        ),
    ),
)


def build_figures(phones: int) -> str:
    """bench_sim's build scenario: default tiers, Markov availability, a missing modality."""
    scenario = Scenario.model_validate(
        {
            "data": {
                "source": {"kind": "synthetic", "modalities": [{"name": n} for n in MODALITIES]}
            },
            "fleet": {"phones": phones, "availability": {"model": "markov"}},
            "modalities": {"missing": [{"modality": "acc", "rate": 0.8}], "absence_prob": 0.2},
        }
    )
    start = time.perf_counter()
    build_fleet(scenario, MODALITIES)
    elapsed = time.perf_counter() - start
    tracemalloc.start()
    fleet = build_fleet(scenario, MODALITIES)
    kept = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    size = len(pickle.dumps(fleet)) / phones
    load = os.getloadavg()[0]
    return (
        f"build {phones:>9,} phones: {elapsed:.3f} s, keeps {kept / 1e6:.1f} MB, "
        f"pickle {size:.1f} B/phone  load {load:.2f}"
    )


def steps_hash(file: str, overrides: tuple[str, ...]) -> str:
    scenario = load_scenario(REPO_SCENARIOS / file, overrides)
    n = scenario.fleet.phones
    key = np.random.default_rng(0).integers(0, 6, n) if scenario.fleet.correlation else None
    fleet = build_fleet(scenario, ("acc", "gyro"), key)
    costs = TaskCosts([100 + p % 7 for p in range(n)], 1, 300_000, [250_000 + p for p in range(n)])
    steps = list(make_policy(scenario, fleet, costs).steps())
    digest = hashlib.sha256(repr(steps).encode()).hexdigest()[:16]
    applied = sum(len(s.applied) for s in steps)
    return f"steps {file} {' '.join(overrides)}: {len(steps)} steps, {applied} applied, {digest}"


def main() -> None:
    print(f"package: {fedmobile_actors.__file__}", file=sys.stderr)
    sizes = [int(a) for a in sys.argv[1:]] or [1000, 10_000, 100_000, 1_000_000]
    for phones in sizes:
        print(build_figures(phones), flush=True)
    for file, overrides in TRACES:
        print(steps_hash(file, overrides), flush=True)


if __name__ == "__main__":
    main()
