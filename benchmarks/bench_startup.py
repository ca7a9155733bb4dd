"""Start-up costs: ``fedmobile run`` from command to first dispatch, and a host's first optimizer.

``run`` (issue 18): launches ``fedmobile run`` (as ``python -m fedmobile_actors.cli``, the
console script without its shell shim) on a scenario (default scenarios/quickstart.yaml, one
round, no plots) ``--repeats`` times, with ``FEDMOBILE_STARTUP_TRACE`` set so that the driver,
the server actor and the hosts timestamp their start-up phases (fedmobile_actors/startup_trace.py).
Prints, for each phase, the median seconds since the command was launched; "first round
requested" is the driver asking the server for round 1, which dispatches at once: the
command-to-first-dispatch figure. The 1-minute load is printed beside it (figures on a shared
machine are noisy).

``optimizer`` (issue 17): each figure from a fresh Python process (the cost is paid once per
process, so a warm process would hide it): the time to import the host's algorithm code (torch
included), then the time of the first ``torch.optim.Adam(...)`` construction (which imports
``torch._dynamo``) or of the first ``LocalAdam(...)``; the median over ``--repeats`` processes.

    python -m benchmarks.bench_startup --what run --repeats 5
    python -m benchmarks.bench_startup --what optimizer --repeats 5
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

PROBE = """
import json, sys, time
t0 = time.perf_counter()
import torch
import fedmobile_actors.algorithms.fedmobile
t1 = time.perf_counter()
params = [torch.nn.Parameter(torch.zeros(3))]
before = set(sys.modules)
t2 = time.perf_counter()
if sys.argv[1] == "torch.optim.Adam":
    torch.optim.Adam(params, lr=0.01)
else:
    from fedmobile_actors.algorithms.training import LocalAdam
    LocalAdam(params, lr=0.01)
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "first_optimizer_s": t3 - t2,
                  "modules_imported": len(set(sys.modules) - before),
                  "dynamo_loaded": "torch._dynamo" in sys.modules}))
"""


def probe(optimizer: str) -> dict[str, float]:
    """One fresh process: its import time and first-construction time of ``optimizer``."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, optimizer], check=True, capture_output=True, text=True
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def trace_run(scenario: str, overrides: list[str]) -> dict[str, float]:
    """One ``fedmobile run``: seconds from launch to the first time each traced event happened
    (any process), plus ``exit`` (the command's whole life)."""
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "trace.txt"
        env = {**os.environ, "FEDMOBILE_STARTUP_TRACE": str(trace)}
        command = [sys.executable, "-m", "fedmobile_actors.cli", "run", scenario, "-q"]
        command += ["--output", tmp, "-o", "rounds.rounds=1", "-o", "output.plots=false"]
        for text in overrides:
            command += ["-o", text]
        launched = time.time()
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
        ended = time.time()
        events: dict[str, float] = {}
        for line in trace.read_text(encoding="utf-8").splitlines():
            stamp, _pid, event = line.split(" ", 2)
            events.setdefault(event, float(stamp) - launched)
        events["exit"] = ended - launched
        return events


def run_startup(scenario: str, overrides: list[str], repeats: int) -> None:
    """The median of each phase over ``repeats`` runs, in the order the phases happen."""
    load = os.getloadavg()[0]
    runs = [trace_run(scenario, overrides) for _ in range(repeats)]
    names = sorted(set().union(*runs), key=lambda e: statistics.median(r.get(e, 0) for r in runs))
    print(
        f"fedmobile run {scenario} ({repeats} runs; 1-minute load {load:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after)"
    )
    print(f"{'phase (first time seen in any process)':<42} {'median s':>9} {'min':>6} {'max':>6}")
    for name in names:
        values = [r[name] for r in runs if name in r]
        print(
            f"{name:<42} {statistics.median(values):>9.2f} {min(values):>6.2f} {max(values):>6.2f}"
        )
    first = [r["first round requested"] for r in runs]
    print(json.dumps({"command_to_first_dispatch_s": statistics.median(first), "runs": first}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh runs or processes each")
    parser.add_argument("--what", choices=["run", "optimizer", "all"], default="all")
    parser.add_argument("--scenario", default="scenarios/quickstart.yaml")
    parser.add_argument("-o", "--override", action="append", default=[], help="PATH=VALUE")
    args = parser.parse_args()
    if args.what in ("run", "all"):
        run_startup(args.scenario, args.override, args.repeats)
    if args.what == "run":
        return
    print(f"{'optimizer':<18} {'import (s)':>10} {'first optimizer (s)':>20} {'modules':>8}")
    for optimizer in ("torch.optim.Adam", "LocalAdam"):
        runs = [probe(optimizer) for _ in range(args.repeats)]
        imp = statistics.median(r["import_s"] for r in runs)
        first = statistics.median(r["first_optimizer_s"] for r in runs)
        modules = int(statistics.median(r["modules_imported"] for r in runs))
        print(f"{optimizer:<18} {imp:>10.3f} {first:>20.3f} {modules:>8}", flush=True)


if __name__ == "__main__":
    main()
