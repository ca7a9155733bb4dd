"""Speed of the pure layers on a large fleet: building 5,000 phones, and planning 50 deadline
rounds on them. No training and no Ray: this is the simulator's own overhead per run.

These were wall-clock assertions in the tests (under 0.5 s and under 5 s); a shared machine makes
such assertions flaky, so the figures are printed here instead, the median of ``--repeats``.

The fleet at a million phones (issue 19): building fleets of 10^3 .. 10^6 phones (time, the
memory the fleet keeps and the peak while drawing it, both by tracemalloc, and its pickled
size), and selecting 100 phones a round from a million with sparse availability (the phones'
processes are built on demand, so each round's cost is the phones it checks).
Every line carries the 1-minute load average, since timings on a shared machine are noisy.

    python -m benchmarks.bench_sim --repeats 5
    python -m benchmarks.bench_sim --repeats 3 --fleets 1000 10000 100000 1000000
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import numpy as np

from fedmobile_actors.fleet import build_fleet
from fedmobile_actors.scenario.schema import Scenario
from fedmobile_actors.seeding import SERVER, rng
from fedmobile_actors.sim import make_policy, selection
from fedmobile_actors.sim.selection import lazy_order, select_online
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


def scale_scenario(phones: int, availability: dict[str, Any]) -> Scenario:
    """The default tiers, a missing modality and absences, over ``phones`` phones."""
    return Scenario.model_validate(
        {
            "data": {
                "source": {"kind": "synthetic", "modalities": [{"name": n} for n in MODALITIES]}
            },
            "fleet": {"phones": phones, "availability": availability},
            "modalities": {"missing": [{"modality": "acc", "rate": 0.8}], "absence_prob": 0.2},
        }
    )


def fleet_build_figures(phones: int, repeats: int) -> dict[str, float]:
    """Build time (median), memory kept and peak while building (MB), pickled bytes a phone."""
    scenario = scale_scenario(phones, {"model": "markov"})
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        build_fleet(scenario, MODALITIES)
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    fleet = build_fleet(scenario, MODALITIES)
    kept, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "build_s": statistics.median(times),
        "kept_mb": kept / 1e6,
        "peak_mb": peak / 1e6,
        "pickle_b_per_phone": len(pickle.dumps(fleet)) / phones,
    }


def selection_figures(
    phones: int, availability: dict[str, Any], rounds: int, want: int
) -> dict[str, float]:
    """Per-round time of selecting ``want`` online phones (``select_online`` with the deadline
    policy's draws), the phones' processes built per round, and at the end the cache's size."""
    fleet = build_fleet(scale_scenario(phones, availability), MODALITIES)
    times, built = [], []
    for r in range(rounds):
        before = len(fleet._processes)
        start = time.perf_counter()
        chosen = select_online(fleet, rng(0, SERVER, r, "select"), 600.0 * r, r, want)
        times.append(time.perf_counter() - start)
        built.append(len(fleet._processes) - before)
        assert len(chosen) == want
    return {
        "round_ms": 1e3 * statistics.median(times),
        "max_ms": 1e3 * max(times),
        "first_round_checks": built[0],
        "cache": len(fleet._processes),
    }


def _permutation_order(gen: np.random.Generator, n: int) -> Iterator[list[int]]:
    """The fallback order as it was for every fleet size (still so up to EXACT_ORDER_MAX)."""
    order = gen.permutation(n)
    for start in range(0, n, 256):
        yield order[start : start + 256].tolist()


def fallback_figures(phones: int, repeats: int, walked: int = 2048) -> dict[str, float]:
    """Milliseconds to hand out the first ``walked`` ids of the fallback order: today's
    ``gen.permutation(n)`` against the lazy forward shuffle (median of ``repeats``)."""
    out = {}
    for name, order in (("permutation", _permutation_order), ("lazy", lazy_order)):
        times = []
        for seed in range(repeats):
            start = time.perf_counter()
            chunks = order(rng(seed, SERVER, 0, "select"), phones)
            for _ in range(walked // 256):
                next(chunks)
            times.append(time.perf_counter() - start)
        out[name] = 1e3 * statistics.median(times)
    return out


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions of each")
    parser.add_argument(
        "--fleets",
        type=int,
        nargs="*",
        default=[1000, 10_000, 100_000, 1_000_000],
        help="fleet sizes for the build figures (none: skip the million-phone part)",
    )
    parser.add_argument("--rounds", type=int, default=20, help="selection rounds at 10^6")
    args = parser.parse_args()
    time_fleet_build()  # warm imports and caches once
    for label, fn in (
        (f"build a fleet of {PHONES} phones", time_fleet_build),
        (f"plan 50 deadline rounds on {PHONES} phones", time_policy),
    ):
        runs = [fn() for _ in range(args.repeats)]
        print(
            f"{label:<42} median {statistics.median(runs):.3f} s  max {max(runs):.3f} s  {load()}"
        )
    if not args.fleets:
        return
    for phones in args.fleets:
        f = fleet_build_figures(phones, args.repeats)
        print(
            f"build {phones:>9,} phones: {f['build_s']:.3f} s, keeps {f['kept_mb']:.1f} MB, "
            f"peak {f['peak_mb']:.1f} MB, pickle {f['pickle_b_per_phone']:.1f} B/phone  {load()}"
        )
    million = max(args.fleets)
    f = fallback_figures(million, max(args.repeats, 5))
    print(
        f"fallback order, first 2,048 of {million:,}: permutation {f['permutation']:.2f} ms, "
        f"lazy {f['lazy']:.2f} ms  {load()}"
    )
    sparse = (
        ("bernoulli p_online 0.05", {"model": "bernoulli", "p_online": 0.05}),
        ("markov 5% online", {"model": "markov", "mean_on_s": 60, "mean_off_s": 1140}),
        ("diurnal 2-30% online", {"model": "diurnal", "peak_online": 0.3, "trough_online": 0.02}),
        ("always", {"model": "always"}),
    )
    for label, availability in sparse:
        for order, bound in (("lazy", selection.EXACT_ORDER_MAX), ("permutation", million)):
            if order == "permutation" and label == "always":
                continue  # never falls back: the first draws find 100 online phones
            selection.EXACT_ORDER_MAX = bound  # "permutation": today's fallback, for comparison
            f = selection_figures(million, availability, args.rounds, 100)
            print(
                f"select 100 of {million:,} ({label}, {order} fallback): median "
                f"{f['round_ms']:.1f} ms/round, max {f['max_ms']:.1f} ms, "
                f"{f['first_round_checks']} processes built in round 0, "
                f"{f['cache']} processes cached  {load()}"
            )
        selection.EXACT_ORDER_MAX = 1 << 16


if __name__ == "__main__":
    main()
