"""Against Flower: the same federated workload on flwr's Ray simulation and on this project.

For each phone count, in this one script run and on this machine: this project's Ray runtime and
Flower 1.42's ``run_simulation`` (each in a fresh child process with a fresh local Ray), plus the
single-process ideal. Figures per framework:

- ``startup_s``: command to first dispatch. Ours: every host has built its world (the first
  round's tasks go out next). Flower: its strategy configures round 1 (its Ray actors are still
  starting then, so Flower's start-up shows in its first round, not here).
- ``first_round_done_s``: command to the end of round 1, and ``startup_overhead_s`` =
  that minus a steady round: what start-up adds to a run, comparable across both frameworks.
- ``steady_round_s``: mean wall time of rounds 2..R (training + aggregation).
- ``total_s``: command to the end of the last round, start-up included.
- ``peak_mem_mib``: peak of the summed RSS of the child and all its descendants (driver, Ray
  GCS, raylet, helpers, workers), sampled every 0.2 s.
- ``efficiency``: ideal serial compute / (steady round x cores).

Also, once: ``fedmobile run`` launched as a command, timed to the moment its run directory's
``run.json`` appears (the driver writes it when the backend is ready, just before round 1).

Usage: ``python -m benchmarks.bench_flower [--phones 50 200] [--rounds 4] [--json out.json]``
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.bench_ideal import measure_ideal, measure_runtime
from benchmarks.common import (
    REPO,
    bench_parser,
    logs_dir,
    machine,
    print_table,
    run_figures,
    run_worker,
    workload_mapping,
    write_json,
)


def measure_flower(phones: int, rounds: int, logs: Path) -> dict[str, Any]:
    argv = ["benchmarks.flower_worker", "--phones", str(phones), "--rounds", str(rounds)]
    load = [round(x, 2) for x in os.getloadavg()]
    data, launched, mem = run_worker(argv, timeout_s=1800, log_path=logs / f"flower-{phones}.log")
    return run_figures(
        "flower", phones, phones, rounds, data, launched, data["first_dispatch_at"],
        mem.peak_bytes, mem.peak_processes, load,
    )  # fmt: skip


def measure_cli_startup(phones: int) -> dict[str, Any]:
    """``fedmobile run`` as a user types it: seconds from launch to ``run.json`` (first dispatch).

    One round is run (plus its final evaluation, which the CLI always does); only the start-up
    and the whole command's time are reported.
    """
    exe = shutil.which("fedmobile")
    cmd = [exe] if exe else [sys.executable, "-m", "fedmobile_actors.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / "bench.yaml"
        mapping = workload_mapping(phones, phones, 1, output_dir=str(Path(tmp) / "runs"))
        scenario.write_text(yaml.safe_dump(mapping, sort_keys=False))
        runs = Path(tmp) / "runs"
        launched = time.time()
        proc = subprocess.Popen(
            [*cmd, "run", str(scenario), "-q"],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        first_dispatch = None
        while proc.poll() is None:
            if first_dispatch is None and any(runs.glob("*/run.json")):
                first_dispatch = time.time() - launched
            time.sleep(0.02)
        finished = time.time() - launched
        if proc.returncode != 0:
            raise RuntimeError(f"fedmobile run exited with {proc.returncode}")
    return {"phones": phones, "startup_s": first_dispatch, "command_s": finished}


COLUMNS = [
    "framework", "phones", "startup_s", "first_round_s", "steady_round_s", "startup_overhead_s",
    "total_s", "peak_mem_mib", "processes", "efficiency",
]  # fmt: skip


def main() -> None:
    parser = bench_parser(__doc__, [50, 200], 4)
    args = parser.parse_args()
    logs = logs_dir(args)
    rows: list[dict[str, Any]] = []
    ratios: list[dict[str, Any]] = []
    for phones in args.phones:
        ideal = measure_ideal(phones)
        ours = measure_runtime(phones, phones, args.rounds, logs)
        flower = measure_flower(phones, args.rounds, logs)
        for row in (ours, flower):
            row["startup_overhead_s"] = row["first_round_done_s"] - row["steady_round_s"]
            row["efficiency"] = ideal["ideal_serial_s"] / (row["steady_round_s"] * ideal["cores"])
            rows.append(row)
        rows.append(
            {
                "framework": "ideal (plain loop)",
                "phones": phones,
                "steady_round_s": ideal["ideal_round_s"],
                "efficiency": 1.0,
                "ideal": ideal,
            }
        )
        ratios.append(
            {
                "phones": phones,
                "steady_round_ratio": ours["steady_round_s"] / flower["steady_round_s"],
                "total_ratio": ours["total_s"] / flower["total_s"],
                "startup_overhead_ratio": ours["startup_overhead_s"] / flower["startup_overhead_s"],
                "peak_mem_ratio": ours["peak_mem_mib"] / flower["peak_mem_mib"],
                "flower_vs_ideal": flower["steady_round_s"] / ideal["ideal_round_s"],
                "ours_vs_ideal": ours["steady_round_s"] / ideal["ideal_round_s"],
            }
        )
    cli = measure_cli_startup(min(args.phones))
    print_table("Per framework (seconds, MiB)", rows, COLUMNS)
    print_table(
        "fedmobile-actors / Flower (below 1: ours is faster or smaller)",
        ratios,
        [
            "phones", "steady_round_ratio", "total_ratio", "startup_overhead_ratio",
            "peak_mem_ratio", "flower_vs_ideal", "ours_vs_ideal",
        ],
    )  # fmt: skip
    print_table("`fedmobile run` start-up (command to first dispatch)", [cli], list(cli))
    write_json(
        args.json,
        {
            "benchmark": "flower",
            "machine": machine(),
            "rows": rows,
            "ratios": ratios,
            "cli_startup": cli,
        },
    )


if __name__ == "__main__":
    main()
