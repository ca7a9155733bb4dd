"""Scale: 100 to 5,000 phones, 100 of them per round, on this machine.

For each fleet size this project's Ray runtime runs the workload in a fresh child process (fresh
local Ray); reported: start-up (command to first dispatch), first and steady round wall time,
and the peak of the summed RSS of all processes of the run (driver, Ray GCS, raylet, helpers,
server actor, phone hosts), sampled every 0.2 s. A run whose processes together pass
``--mem-limit-gb`` is stopped (this machine is shared) and reported as such, with the memory it
had reached.

Usage: ``python -m benchmarks.bench_scale [--phones 100 500 1000 5000] [--rounds 3]
[--json out.json]``
"""

from __future__ import annotations

import os
from typing import Any

from benchmarks.bench_ideal import measure_runtime
from benchmarks.common import (
    MemoryLimitExceeded,
    bench_parser,
    logs_dir,
    machine,
    mib,
    print_table,
    write_json,
)

PER_ROUND = 100


def main() -> None:
    parser = bench_parser(__doc__, [100, 500, 1000, 5000], 3)
    parser.add_argument("--per-round", type=int, default=PER_ROUND)
    parser.add_argument("--mem-limit-gb", type=float, default=14.0)
    args = parser.parse_args()
    logs = logs_dir(args)
    limit = int(args.mem_limit_gb * 2**30)
    rows: list[dict[str, Any]] = []
    for phones in args.phones:
        per_round = min(args.per_round, phones)
        try:
            row = measure_runtime(phones, per_round, args.rounds, logs, mem_limit_bytes=limit)
            row["status"] = "ok"
        except RuntimeError as err:
            if not isinstance(err, MemoryLimitExceeded):
                rows.append({"phones": phones, "per_round": per_round, "status": str(err)})
                continue
            row = {
                "framework": "fedmobile-actors",
                "phones": phones,
                "per_round": per_round,
                "status": f"stopped: over {args.mem_limit_gb:g} GB",
                "peak_mem_mib": mib(err.sampler.peak_bytes),
                "processes": err.sampler.peak_processes,
                "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            }
        row["peak_mem_gb"] = row["peak_mem_mib"] / 1024
        rows.append(row)
    print_table(
        f"Scale ({args.per_round} phones per round; seconds, GB)",
        rows,
        [
            "phones", "per_round", "startup_s", "first_round_s", "steady_round_s", "total_s",
            "peak_mem_gb", "processes", "status",
        ],
    )  # fmt: skip
    write_json(args.json, {"benchmark": "scale", "machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()
