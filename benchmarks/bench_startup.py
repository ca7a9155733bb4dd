"""Start-up cost of a FedMobile host process: importing the project, and the first optimizer.

Each figure comes from a fresh Python process (the cost is paid once per process, so a warm
process would hide it): the time to import the host's algorithm code (torch included), then the
time of the first ``torch.optim.Adam(...)`` construction (which imports ``torch._dynamo``) or of
the first ``LocalAdam(...)``. Prints the median over ``--repeats`` processes of each.

    python -m benchmarks.bench_startup --repeats 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per optimizer")
    args = parser.parse_args()
    print(f"{'optimizer':<18} {'import (s)':>10} {'first optimizer (s)':>20} {'modules':>8}")
    for optimizer in ("torch.optim.Adam", "LocalAdam"):
        runs = [probe(optimizer) for _ in range(args.repeats)]
        imp = statistics.median(r["import_s"] for r in runs)
        first = statistics.median(r["first_optimizer_s"] for r in runs)
        modules = int(statistics.median(r["modules_imported"] for r in runs))
        print(f"{optimizer:<18} {imp:>10.3f} {first:>20.3f} {modules:>8}", flush=True)


if __name__ == "__main__":
    main()
