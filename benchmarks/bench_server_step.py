"""The server step: FedMobile's clustering + Shapley + aggregation time against reports and K.

The server's per-round work for FedMobile (``FedMobile.aggregate``) in one process, on reports
shaped exactly like real ones: one genuine ``local_update`` of the workload's model and generator
gives the array names, shapes and metric names; each report is that update with its arrays moved
towards one of K group centres plus a small per-report perturbation (draws keyed by report and
purpose, as everywhere in the project), so k-means has K real groups to find.

Timed per (reports, K, mode), median of ``--repeats`` after a warm-up, one torch thread (as in
the server actor):
- ``clustering_s``: each report's generator on the probe batch + k-means + cluster averages;
- ``shapley_s``: the representatives' Shapley values (every coalition's utility), exact over
  all 2^K coalitions or Monte Carlo (``--permutations`` antithetic permutations);
- ``aggregation_s``: admission, contribution-aware alpha and the model's weighted average;
- ``total_s``: the whole ``FedMobile.aggregate`` call (the three above plus glue).
Utility: without a proxy set (the scenario default), the head's accuracy on generated features.

Usage: ``python -m benchmarks.bench_server_step [--reports 10 100 1000] [--clusters 2 4 8 12]
[--json out.json]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import numpy as np
import torch

from benchmarks.common import machine, print_table, workload_mapping, write_json
from fedmobile_actors.algorithms.admission import admit
from fedmobile_actors.algorithms.aggregation import weighted_average
from fedmobile_actors.algorithms.clustering import (
    cluster_representatives,
    generator_signatures,
    kmeans_labels,
)
from fedmobile_actors.algorithms.fedmobile import FedMobile
from fedmobile_actors.algorithms.generator import GEN_PREFIX
from fedmobile_actors.algorithms.registry import make_strategy
from fedmobile_actors.algorithms.strategy import ClientUpdate, GlobalState
from fedmobile_actors.runtime.world import World
from fedmobile_actors.scenario.loader import validate_mapping
from fedmobile_actors.seeding import SERVER, int_seed, rng

#: Spread of the K group centres and of each report around its centre (relative to weights).
GROUP_SPREAD, REPORT_SPREAD = 0.05, 0.005
#: Enough phones for one real update; the server step does not depend on the fleet.
PHONES = 10


def fedmobile_strategy(clusters: int, exact: bool, permutations: int) -> FedMobile:
    raw = workload_mapping(PHONES, PHONES, 2)
    raw["algorithm"]["name"] = "fedmobile"
    raw["algorithm"]["fedmobile"] = {
        "clusters": clusters,
        # Exact: allow all K; Monte Carlo: force sampling even at small K.
        "shapley_exact_max": max(clusters, 12) if exact else 1,
        "shapley_permutations": permutations,
    }
    world = World.build(validate_mapping(raw, "benchmark"))
    strategy = make_strategy(world.context())
    assert isinstance(strategy, FedMobile)
    strategy.bench_world = world  # type: ignore[attr-defined]
    return strategy


def make_reports(strategy: FedMobile, state: GlobalState, reports: int, clusters: int) -> list[Any]:
    """``reports`` updates around ``clusters`` centres, shaped like a real local update."""
    world: World = strategy.bench_world  # type: ignore[attr-defined]
    real = strategy.local_update(strategy.payload(state), world.local_data(0), 0, 0, 0)
    centres = []
    for c in range(clusters):
        gen = rng(0, SERVER, c, "bench/centre")
        centres.append(
            {k: a + GROUP_SPREAD * gen.standard_normal(a.shape) for k, a in real.arrays.items()}
        )
    out = []
    for r in range(reports):
        gen = rng(0, r, 0, "bench/report")
        arrays = {
            k: (a + REPORT_SPREAD * gen.standard_normal(a.shape)).astype(np.float32)
            for k, a in centres[r % clusters].items()
        }
        metrics = {k: v * (0.5 + gen.random()) for k, v in real.metrics.items()}
        out.append(ClientUpdate(r, state.version, real.num_samples, arrays, metrics))
    return out


def measure(
    reports: int, clusters: int, exact: bool, permutations: int, repeats: int
) -> dict[str, Any]:
    strategy = fedmobile_strategy(clusters, exact, permutations)
    state = strategy.initial_state()
    updates = make_reports(strategy, state, reports, clusters)
    weights = [1.0] * reports
    runs: dict[str, list[float]] = {"clustering_s": [], "shapley_s": [], "aggregation_s": []}
    runs["total_s"] = []
    found = 0
    for attempt in range(repeats + 1):  # the first is a warm-up (lazy imports, allocations)
        t0 = time.perf_counter()
        admitted, staleness, _ = admit(state.arrays, updates, weights)
        alpha, _ = strategy.model_weights(admitted, staleness, state.info)
        model_keys = [k for k in state.arrays if not k.startswith(GEN_PREFIX)]
        model = weighted_average(
            [{k: u.arrays[k] for k in model_keys} for u in admitted], alpha.tolist()
        )
        t1 = time.perf_counter()
        gens = [
            {k[len(GEN_PREFIX) :]: a for k, a in u.arrays.items() if k.startswith(GEN_PREFIX)}
            for u in admitted
        ]
        signatures = generator_signatures(strategy.generator, gens, *strategy.probe)
        labels = kmeans_labels(signatures, clusters, int_seed(0, SERVER, 1, "kmeans"))
        reps, masses = cluster_representatives(gens, labels, [1.0] * len(gens))
        t2 = time.perf_counter()
        strategy.cluster_weights(1, reps, masses, model)
        t3 = time.perf_counter()
        result = strategy.aggregate(state, updates, weights)
        t4 = time.perf_counter()
        found = int(result.metrics["clusters"])
        if attempt == 0:
            continue
        runs["aggregation_s"].append(t1 - t0)
        runs["clustering_s"].append(t2 - t1)
        runs["shapley_s"].append(t3 - t2)
        runs["total_s"].append(t4 - t3)
    row: dict[str, Any] = {
        "reports": reports,
        "K": clusters,
        "mode": "exact" if exact else f"mc{permutations}",
        "clusters_found": found,
        "coalitions": 2**clusters if exact else None,
    }
    row.update({name: statistics.median(values) for name, values in runs.items()})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--clusters", type=int, nargs="+", default=[2, 4, 8, 12])
    parser.add_argument("--permutations", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for reports in args.reports:
        for k in args.clusters:
            if k > reports:
                continue
            for exact in (True, False):
                rows.append(measure(reports, k, exact, args.permutations, args.repeats))
                rows[-1]["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    print_table(
        "Server step (FedMobile.aggregate, seconds, median)",
        rows,
        [
            "reports", "K", "mode", "clusters_found", "clustering_s", "shapley_s",
            "aggregation_s", "total_s",
        ],
    )  # fmt: skip
    write_json(args.json, {"benchmark": "server_step", "machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()
