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

``--attached``: the same, against a long-lived local Ray (``ray start --head`` once, before the
first run, and ``ray stop`` after the last, with ``runtime.address=auto`` on each run), the
way a user who keeps Ray up between runs, or works on a cluster, starts a run. The trace
variable is set for ``ray start`` too, so the actors' phases are traced as well.

    python -m benchmarks.bench_startup --what run --repeats 5
    python -m benchmarks.bench_startup --what run --repeats 5 --attached
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
from collections.abc import Iterator
from contextlib import contextmanager
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


def trace_run(scenario: str, overrides: list[str], trace: Path | None = None) -> dict[str, float]:
    """One ``fedmobile run``: seconds from launch to the first time each traced event happened
    (any process), plus ``exit`` (the command's whole life). ``trace``: the trace file (one a
    long-lived Ray was started with); it is emptied first. Default: a fresh one."""
    with tempfile.TemporaryDirectory() as tmp:
        trace = trace or Path(tmp) / "trace.txt"
        trace.write_text("", encoding="utf-8")
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


@contextmanager
def long_lived_ray(trace: Path) -> Iterator[None]:
    """A local Ray head for the runs to attach to (two CPUs, no dashboard), stopped after."""
    env = {**os.environ, "FEDMOBILE_STARTUP_TRACE": str(trace)}
    start = ["ray", "start", "--head", "--num-cpus", "2", "--include-dashboard=false"]
    subprocess.run(
        [*start, "--disable-usage-stats"], check=True, env=env, stdout=subprocess.DEVNULL
    )
    try:
        yield
    finally:
        subprocess.run(["ray", "stop", "--force"], check=False, stdout=subprocess.DEVNULL)


def run_startup(scenario: str, overrides: list[str], repeats: int, attached: bool = False) -> None:
    """The median of each phase over ``repeats`` runs, in the order the phases happen."""
    load = os.getloadavg()[0]
    if attached:
        with tempfile.TemporaryDirectory() as tmp:
            trace = Path(tmp) / "trace.txt"
            with long_lived_ray(trace):
                time.sleep(2.0)  # let the head's own processes settle before the first run
                attach = [*overrides, "runtime.address=auto"]
                runs = [trace_run(scenario, attach, trace) for _ in range(repeats)]
    else:
        runs = [trace_run(scenario, overrides) for _ in range(repeats)]
    names = sorted(set().union(*runs), key=lambda e: statistics.median(r.get(e, 0) for r in runs))
    mode = "attached to a long-lived Ray" if attached else "each starting its own Ray"
    print(
        f"fedmobile run {scenario}, {mode} ({repeats} runs; 1-minute load {load:.2f} before, "
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
    parser.add_argument(
        "--attached", action="store_true", help="runs attach to a long-lived local Ray"
    )
    args = parser.parse_args()
    if args.what in ("run", "all"):
        run_startup(args.scenario, args.override, args.repeats, args.attached)
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
