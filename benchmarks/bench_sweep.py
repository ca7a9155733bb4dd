"""Sweep throughput: a 16-cell sweep on a 2-node Ray cluster, concurrent vs one after another,
and the in-process sweep (parallel and sequential) on the same machine, in one run.

The cells are tiny on purpose (8 phones of 60 synthetic windows, 4 per round, 5 rounds: about a
second of rounds each), so the figures show what the sweep machinery costs per cell, not what
training costs.

Modes, all over the same 16 cells (``algorithm.lr`` x 4, seeds x 4):
- ``ray concurrent``: ``ray.cluster_utils.Cluster`` with 2 nodes of ``--cpus-per-node`` CPUs;
  every cell a Ray task in its own placement group of one 1-CPU host (runtime/ray_sweep.py).
- ``ray sequential``: the same cluster, ``sweep.parallel: 1``: cells one after another in this
  process, each spreading its hosts over the whole cluster.
- ``inprocess parallel``: ``ProcessPoolExecutor`` of ``--workers`` spawned processes.
- ``inprocess sequential``: one cell after another in this process.

Per mode: wall time of the whole sweep, cells per minute, the throughput ratio against the same
backend's sequential mode, the mean time a cell spends in its rounds (``wall_time_s`` of its
summary, from the first round to the last), and the per-cell overhead: the wall time one slot
spends per cell (sweep wall time x slots / cells) minus that round time, i.e. start-up (Ray
actors, torch imports, placement groups) and the files around the rounds. It also checks that
every mode gives the same table (every column but the run directory, node and wall time).

Usage: ``python -m benchmarks.bench_sweep [--cells 16] [--rounds 3] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fedmobile_actors.orchestration.sweep import run_sweep
from fedmobile_actors.report.compare import load_sweep_rows
from fedmobile_actors.scenario import load_scenario

SCENARIO = """
name: bench-sweep
data: {{source: {{kind: synthetic, samples: {samples}}}}}
fleet: {{phones: {phones}}}
algorithm: {{local_epochs: 1, lr: 0.05, momentum: 0.9}}
rounds: {{rounds: {rounds}, clients_per_round: {clients}}}
runtime: {{backend: ray}}
output: {{dir: {out}, checkpoint_every: 1, plots: false, event_log: false}}
sweep:
  grid:
    algorithm.lr: {lrs}
  seeds: {seeds}
"""

NOT_RESULTS = ("run", "wall_time_s", "node")


# benchmarks.common needs psutil (the bench extra); this benchmark needs only the standard library
# and Ray, so it carries its own three small helpers.


def machine() -> dict[str, Any]:
    """Cores, platform, Ray and Python versions, and the load right now (the machine is shared)."""
    import ray

    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "ray": ray.__version__,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def print_table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
    """A plain aligned text table (floats to 3 significant digits)."""
    cells = [
        [f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c]) for c in columns] for r in rows
    ]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print(f"\n{title}")
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))


def grid(cells: int) -> tuple[list[float], list[int]]:
    """``cells`` = 4 learning rates x (cells / 4) seeds (at least one seed)."""
    lrs = [0.01, 0.02, 0.05, 0.1][: min(4, cells)]
    return lrs, list(range(max(1, cells // len(lrs))))


def timed_sweep(path: Path, overrides: list[str]) -> tuple[float, list[dict[str, Any]]]:
    scenario = load_scenario(path, overrides)
    started = time.perf_counter()
    rows = load_sweep_rows(run_sweep(scenario, quiet=True))
    return time.perf_counter() - started, rows


def figures(mode: str, wall: float, rows: list[dict[str, Any]], slots: int) -> dict[str, Any]:
    rounds_time = mean([float(r["wall_time_s"]) for r in rows if r["wall_time_s"] is not None])
    per_slot = wall * slots / len(rows)
    return {
        "mode": mode,
        "cells": len(rows),
        "finished": sum(r["status"] == "finished" for r in rows),
        "slots": slots,
        "nodes": len({r["node"] for r in rows if r["node"]}),
        "wall_s": wall,
        "cells_per_min": 60 * len(rows) / wall,
        "cell_rounds_s": rounds_time,
        "overhead_per_cell_s": per_slot - rounds_time,
    }


def results(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in NOT_RESULTS} for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cells", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--phones", type=int, default=8, help="phones per cell (60 windows each)")
    parser.add_argument("--cpus-per-node", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="in-process parallel workers")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()

    import ray
    from ray.cluster_utils import Cluster

    before = machine()
    lrs, seeds = grid(args.cells)
    out: list[dict[str, Any]] = []
    tables: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        path = Path(tmp) / "sweep.yaml"
        text = SCENARIO.format(
            rounds=args.rounds,
            phones=args.phones,
            samples=60 * args.phones,
            clients=max(1, args.phones // 2),
            out=Path(tmp) / "runs",
            lrs=lrs,
            seeds=seeds,
        )
        path.write_text(text, encoding="utf-8")

        started = time.perf_counter()
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": args.cpus_per_node})
        cluster.add_node(num_cpus=args.cpus_per_node)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        print(f"2-node cluster up in {time.perf_counter() - started:.1f}s", flush=True)
        slots = 2 * args.cpus_per_node
        try:
            for mode, overrides, width in (
                ("ray concurrent", ["sweep.parallel=null"], slots),
                ("ray sequential", ["sweep.parallel=1"], 1),
            ):
                wall, rows = timed_sweep(path, overrides)
                tables[mode] = rows
                out.append(figures(mode, wall, rows, width))
                print(f"{mode}: {wall:.1f}s", flush=True)
        finally:
            ray.shutdown()
            cluster.shutdown()
        for mode, overrides, width in (
            ("inprocess parallel", [f"sweep.parallel={args.workers}"], args.workers),
            ("inprocess sequential", ["sweep.parallel=1"], 1),
        ):
            wall, rows = timed_sweep(path, ["runtime.backend=inprocess", *overrides])
            tables[mode] = rows
            out.append(figures(mode, wall, rows, width))
            print(f"{mode}: {wall:.1f}s", flush=True)

    for row in out:
        backend = row["mode"].split()[0]
        sequential = next(r for r in out if r["mode"] == f"{backend} sequential")
        row["throughput_vs_sequential"] = row["cells_per_min"] / sequential["cells_per_min"]
    # The runtime is part of a cell's id, so compare across backends without the cell column.
    reference = [{**r, "cell": ""} for r in results(tables["ray sequential"])]
    identical = {
        mode: [{**r, "cell": ""} for r in results(rows)] == reference
        for mode, rows in tables.items()
    }
    print_table(
        f"Sweep of {args.cells} cells ({args.rounds} rounds, {args.phones} phones each)",
        out,
        [
            "mode",
            "finished",
            "slots",
            "nodes",
            "wall_s",
            "cells_per_min",
            "throughput_vs_sequential",
            "cell_rounds_s",
            "overhead_per_cell_s",
        ],
    )
    print(f"\nsame table in every mode: {json.dumps(identical)}")
    payload = {
        "machine_before": before,
        "loadavg_after": machine()["loadavg"],
        "cells": args.cells,
        "rounds": args.rounds,
        "modes": out,
        "identical_tables": identical,
    }
    text = json.dumps(payload, indent=2)
    print(f"\nJSON:\n{text}")
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
