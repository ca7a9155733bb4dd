"""Fleet scale: 10^3 to 10^6 phones, 100 of them per round, with on-demand per-phone data.

Issue 19's benchmark. The workload of ``common.py`` (128 windows of two 3 x 100 modalities per
phone, the default Conv1d net, FedAvg, one epoch) with ``data.source.per_phone``: no phone's
windows exist until it is dispatched. For each fleet size this project's Ray runtime runs in a
fresh child process (fresh local Ray); reported: start-up (command to first dispatch), first and
steady round wall time (mean of the rounds after the first), the steady round relative to the
first fleet size's, and the peak of the summed RSS of all processes of the run (driver, Ray
GCS, raylet, helpers, server actor, phone hosts), sampled every 0.2 s. A run whose processes
together pass ``--mem-limit-gb`` is stopped (the machine may be shared) and reported as such.

``--parts N`` instead times the parts of start-up for N phones in this one process (shared
data, fleet, groups, shard sizes, 100 phones' shards): where start-up goes, without Ray.

Usage: ``python -m benchmarks.bench_fleet_scale [--phones 1000 10000 100000 1000000]
[--rounds 4] [--json out.json] [--parts 1000000]``
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


def startup_parts(phones: int) -> dict[str, Any]:
    """Seconds of each part of building a world of ``phones`` with on-demand data, in order."""
    import pickle
    import time

    from benchmarks.common import workload_scenario
    from fedmobile_actors.runtime.groups import GroupIndex
    from fedmobile_actors.runtime.world import World, _load_shared

    scenario = workload_scenario(phones, PER_ROUND, 5, on_demand=True, backend="inprocess")
    out: dict[str, Any] = {"phones": phones, "loadavg_before": list(os.getloadavg())}
    start = time.perf_counter()
    shared = _load_shared(scenario)
    out["shared_data_s"] = time.perf_counter() - start
    out["shared_data_mib"] = mib(len(pickle.dumps(shared)))
    start = time.perf_counter()
    world = World.build(scenario, shared)
    out["fleet_s"] = time.perf_counter() - start
    start = time.perf_counter()
    _ = world.group_codes
    out["group_codes_s"] = time.perf_counter() - start
    start = time.perf_counter()
    GroupIndex.of(world)
    out["group_index_s"] = time.perf_counter() - start
    start = time.perf_counter()
    _ = world.shard_sizes
    out["shard_sizes_s"] = time.perf_counter() - start
    start = time.perf_counter()
    for phone in range(0, phones, max(1, phones // 100)):
        world.local_data(phone)
    out["hundred_shards_s"] = time.perf_counter() - start
    return out


def main() -> None:
    parser = bench_parser(__doc__, [1_000, 10_000, 100_000, 1_000_000], 4)
    parser.add_argument("--per-round", type=int, default=PER_ROUND)
    parser.add_argument("--mem-limit-gb", type=float, default=12.0)
    parser.add_argument("--parts", type=int, help="time start-up's parts for this many phones")
    args = parser.parse_args()
    if args.parts is not None:
        write_json(args.json, {"benchmark": "fleet_parts", **startup_parts(args.parts)})
        return
    logs = logs_dir(args)
    limit = int(args.mem_limit_gb * 2**30)
    rows: list[dict[str, Any]] = []
    for phones in args.phones:
        per_round = min(args.per_round, phones)
        print(f"{phones:,} phones ...", flush=True)
        try:
            row = measure_runtime(
                phones, per_round, args.rounds, logs, mem_limit_bytes=limit, on_demand=True
            )
            row["status"] = "ok"
        except MemoryLimitExceeded as err:
            row = {
                "framework": "fedmobile-actors",
                "phones": phones,
                "per_round": per_round,
                "status": f"stopped: over {args.mem_limit_gb:g} GB",
                "peak_mem_mib": mib(err.sampler.peak_bytes),
                "processes": err.sampler.peak_processes,
                "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            }
        except RuntimeError as err:
            rows.append({"phones": phones, "per_round": per_round, "status": str(err)})
            continue
        row["peak_mem_gb"] = row["peak_mem_mib"] / 1024
        rows.append(row)
    base = next((r["steady_round_s"] for r in rows if "steady_round_s" in r), None)
    for row in rows:
        if base and "steady_round_s" in row:
            row["steady_vs_smallest"] = row["steady_round_s"] / base
    print_table(
        f"Fleet scale, on-demand data ({args.per_round} phones per round; seconds, GB)",
        rows,
        [
            "phones", "per_round", "startup_s", "first_round_s", "steady_round_s",
            "steady_vs_smallest", "peak_mem_gb", "processes", "loadavg_before", "status",
        ],
    )  # fmt: skip
    write_json(args.json, {"benchmark": "fleet_scale", "machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()
