"""Child process: this project's Ray runtime on the benchmark workload, round by round.

Run by the benchmarks (``python -m benchmarks.fedmobile_worker ...``) so that each measurement
has a fresh Ray and a process tree of its own to sample. It drives ``make_backend`` and
``run_round`` directly (what ``fedmobile run`` does, minus the files), and stops one round
before the scenario's last so the runtime's final evaluation is not timed. ``backend_ready_at``
is when every host has built its world and the first round is dispatched next.
"""

from __future__ import annotations

import time

STARTED_AT = time.time()  # before the heavy imports: they are part of start-up

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402

from benchmarks.common import workload_scenario  # noqa: E402
from fedmobile_actors.runtime.backend import make_backend  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--phones", type=int, required=True)
    parser.add_argument("--per-round", type=int, required=True)
    parser.add_argument("--rounds", type=int, required=True)
    parser.add_argument("--hosts", type=int, default=None)
    parser.add_argument("--on-demand", action="store_true", help="data.source.per_phone")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--gpus-per-host", type=float, default=0.0)
    parser.add_argument("--result", required=True)
    args = parser.parse_args()
    imported_at = time.time()
    scenario = workload_scenario(
        args.phones, args.per_round, args.rounds + 1, on_demand=args.on_demand
    )
    update: dict[str, object] = {"device": args.device, "gpus_per_host": args.gpus_per_host}
    if args.hosts is not None:
        update["hosts"] = args.hosts
    runtime = scenario.runtime.model_copy(update=update)
    scenario = scenario.model_copy(update={"runtime": runtime})
    backend = make_backend(scenario)
    ready_at = time.time()
    round_s, reported = [], []
    for _ in range(args.rounds):
        start = time.perf_counter()
        output = backend.run_round()
        round_s.append(time.perf_counter() - start)
        assert output is not None
        reported.append(output.metrics.reported)
    done_at = time.time()
    hosts = backend.describe()["hosts"]
    backend.shutdown()
    result = {
        "started_at": STARTED_AT,
        "imported_at": imported_at,
        "backend_ready_at": ready_at,
        "done_at": done_at,
        "round_s": round_s,
        "reported": reported,
        "hosts": hosts,
        "pid": os.getpid(),
    }
    with open(args.result, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
