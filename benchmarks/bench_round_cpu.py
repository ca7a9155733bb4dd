"""Where a steady round's CPU goes, by process: a measure that survives a busy machine.

Wall time on a shared 2-core machine says more about the neighbours than about the runtime, but
the CPU seconds each of this run's processes spends per round do not depend much on them: the
hosts' share is training plus per-task plumbing, the server's is dispatch, decode and
aggregation, Ray's own processes (raylet, GCS) and the driver are the rest. The round's training
alone costs what the plain loop costs (``bench_ideal``'s ``ideal_serial_s``), so the CPU above it
is the runtime's overhead.

Usage: ``python -m benchmarks.bench_round_cpu [--phones 200] [--rounds 6] [--eval-every 1]
[--json out.json]``
(the first round is a warm-up; steady rounds are averaged).
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict
from typing import Any

import psutil

from benchmarks.common import workload_scenario, write_json
from fedmobile_actors.runtime.backend import make_backend


def kind_of(proc: psutil.Process) -> str:
    """Which part of the run a process is: server, host, driver or Ray's own."""
    try:
        title = " ".join(proc.cmdline())
    except psutil.Error:
        return "gone"
    if "ServerActor" in title:
        return "server"
    if "RayPhoneHost" in title:
        return "hosts"
    if proc.pid == os.getpid():
        return "driver"
    return "ray"


def cpu_by_kind() -> dict[str, float]:
    """CPU seconds (user + system) so far of this process and every descendant, by kind."""
    out: dict[str, float] = defaultdict(float)
    me = psutil.Process()
    for proc in [me, *me.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        out[kind_of(proc)] += times.user + times.system
    return dict(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--phones", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--json", default=None)
    parser.add_argument(
        "--eval-every", type=int, default=None, help="evaluate every N rounds (default: never)"
    )
    args = parser.parse_args()
    scenario = workload_scenario(args.phones, args.phones, args.rounds + 1)
    if args.eval_every is not None:
        rounds = scenario.rounds.model_copy(update={"eval_every": args.eval_every})
        scenario = scenario.model_copy(update={"rounds": rounds})
    backend = make_backend(scenario)
    rows: list[dict[str, Any]] = []
    for r in range(args.rounds):
        before, start = cpu_by_kind(), time.perf_counter()
        out = backend.run_round()
        wall, after = time.perf_counter() - start, cpu_by_kind()
        assert out is not None
        cpu = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
        rows.append({"round": r + 1, "wall_s": wall, "cpu_s": cpu, "load": os.getloadavg()[0]})
        shown = "  ".join(f"{k} {v:.2f}" for k, v in sorted(cpu.items()))
        print(f"round {r + 1}: wall {wall:.2f} s  cpu {shown}  load {os.getloadavg()[0]:.1f}")
    backend.shutdown()
    steady = rows[1:]
    kinds = sorted({k for row in steady for k in row["cpu_s"]})
    mean = {k: sum(row["cpu_s"].get(k, 0.0) for row in steady) / len(steady) for k in kinds}
    print("steady mean cpu s/round: " + "  ".join(f"{k} {v:.3f}" for k, v in mean.items()))
    write_json(
        args.json, {"benchmark": "round_cpu", "phones": args.phones, "rows": rows, "mean": mean}
    )


if __name__ == "__main__":
    main()
