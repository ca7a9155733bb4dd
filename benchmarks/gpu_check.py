"""GPU against CPU (issue 18): the quickstart's metrics and the 200-phone round, one script.

Prepared without a GPU, to be run as is on a machine with one (``nvidia-smi`` works and torch
sees CUDA):

    python -m benchmarks.gpu_check --json gpu.json

1. Quickstart (scenarios/quickstart.yaml, 20 rounds, ``fedmobile run``): on the CPU
   (``runtime.device: cpu``) and twice on the GPU (``device: cuda``, ``--hosts`` hosts sharing
   one GPU, ``gpus_per_host = 1/hosts``). Prints final accuracies and the mean train loss of the
   last round; checks that the two GPU runs are identical (same GPU, same numbers) and that the
   GPU run is within the tolerance of docs/performance.md ("GPUs") of the CPU run.
2. The benchmark workload of docs/performance.md at 200 phones (all phones every round,
   ``benchmarks/fedmobile_worker.py``): the median steady round and start-up on the CPU (one
   host per core given) and on the GPU.

Prints one line per run and a JSON summary (also written to ``--json``). Exit status 1 when a
check fails, so a run shows at a glance whether the tolerance held.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: The tolerance of a GPU run against the CPU run (docs/performance.md, "GPUs").
ACCURACY_POINTS = 0.03
TRAIN_LOSS_RELATIVE = 0.10


def quickstart(out: Path, label: str, overrides: list[str]) -> dict[str, Any]:
    """One ``fedmobile run`` of the quickstart; its final figures and wall time."""
    command = [sys.executable, "-m", "fedmobile_actors.cli", "run", "scenarios/quickstart.yaml"]
    command += ["-q", "--output", str(out / label), "-o", "output.plots=false"]
    for text in overrides:
        command += ["-o", text]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    [run_dir] = list((out / label).iterdir())
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    last = rows[-1]
    figures = {
        "label": label,
        "overrides": overrides,
        "wall_s": wall,
        "accuracy_full": last["accuracy_full"],
        "accuracy_missing": last["accuracy_missing"],
        "train_loss": last["train_loss"],
        "rows": [{k: v for k, v in r.items() if k != "wall_time_s"} for r in rows],
    }
    print(
        f"quickstart {label:<6} acc {figures['accuracy_full']:.4f} missing "
        f"{figures['accuracy_missing']:.4f} train loss {figures['train_loss']:.5f} "
        f"wall {wall:.1f}s",
        flush=True,
    )
    return figures


def workload(out: Path, label: str, phones: int, rounds: int, extra: list[str]) -> dict[str, Any]:
    """The benchmark workload at ``phones`` phones; steady round = median of rounds 2..n."""
    result = out / f"{label}.json"
    command = [sys.executable, "-m", "benchmarks.fedmobile_worker", "--phones", str(phones)]
    command += ["--per-round", str(phones), "--rounds", str(rounds), "--result", str(result)]
    subprocess.run([*command, *extra], check=True, stdout=subprocess.DEVNULL)
    data = json.loads(result.read_text())
    figures = {
        "label": label,
        "args": extra,
        "hosts": data["hosts"],
        "startup_s": data["backend_ready_at"] - data["started_at"],
        "first_round_s": data["round_s"][0],
        "steady_round_s": statistics.median(data["round_s"][1:]),
        "round_s": data["round_s"],
    }
    print(
        f"{phones} phones {label:<6} hosts {figures['hosts']} start-up "
        f"{figures['startup_s']:.2f}s first round {figures['first_round_s']:.2f}s steady round "
        f"{figures['steady_round_s']:.3f}s",
        flush=True,
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=2, help="hosts sharing the one GPU")
    parser.add_argument("--cpu-hosts", type=int, default=2, help="hosts of the CPU runs")
    parser.add_argument("--phones", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--json", help="also write the summary here")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        sys.exit("gpu_check: torch sees no CUDA GPU here; run it on a machine with one")
    share = f"{1 / args.hosts:.6g}"
    gpu = [f"runtime.hosts={args.hosts}", f"runtime.gpus_per_host={share}", "runtime.device=cuda"]
    cpu = [f"runtime.hosts={args.cpu_hosts}", "runtime.device=cpu"]
    summary: dict[str, Any] = {
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg()[0],
    }
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        runs = [quickstart(out, "cpu", cpu), quickstart(out, "gpu", gpu)]
        runs.append(quickstart(out, "gpu2", gpu))
        gpu_flags = ["--hosts", str(args.hosts), "--device", "cuda", "--gpus-per-host", share]
        bench = [
            workload(out, "cpu", args.phones, args.rounds, ["--hosts", str(args.cpu_hosts)]),
            workload(out, "gpu", args.phones, args.rounds, gpu_flags),
        ]
    cpu_run, gpu_run, gpu_again = runs
    checks = {
        "gpu_repeatable": gpu_run["rows"] == gpu_again["rows"],
        "accuracy_within": abs(gpu_run["accuracy_full"] - cpu_run["accuracy_full"])
        <= ACCURACY_POINTS,
        "train_loss_within": abs(gpu_run["train_loss"] - cpu_run["train_loss"])
        <= TRAIN_LOSS_RELATIVE * abs(cpu_run["train_loss"]),
    }
    for run in runs:
        del run["rows"]
    summary.update(quickstart=runs, workload=bench, checks=checks)
    summary["load_after"] = os.getloadavg()[0]
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    if not all(checks.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
