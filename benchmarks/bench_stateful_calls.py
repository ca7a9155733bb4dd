"""A stateful strategy's step on Ray: one streaming call per host against one call per task.

Side by side in one run: a server driven here in the driver
process runs rounds of ``fedavg_local_momentum`` (each phone's momentum buffers persist across
its tasks) on the issue-8 workload (128 synthetic windows per phone, the default model), once
through ``RayHostPool.train_many_with_state`` (each host gets its tasks and their phones' states
in one Ray generator call) and once through ``HostPool.train_many_with_state``, the default the
pool had before (one ``train_with_state`` actor call per task, chained per phone). The two
servers alternate round by round, so the machine's other load falls on both alike; the first
round of each is a warm-up. Each path has its own two host actors (hosts cache decoded model
versions by number, so shared hosts would hand one path's models to the other), and Ray is told
of 4 CPUs so all four exist; only one path's two hosts train at a time. Both paths must
produce the same metrics, bit for bit (checked).

Usage: ``python -m benchmarks.bench_stateful_calls [--phones 200] [--rounds 4] [--repeats 4]
[--json out.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import ray

from benchmarks.common import machine, print_table, workload_mapping, write_json
from fedmobile_actors.runtime.hosts import HostPool
from fedmobile_actors.runtime.ray_backend import RayHostPool, start_hosts
from fedmobile_actors.runtime.server import Server
from fedmobile_actors.runtime.world import World
from fedmobile_actors.scenario.loader import validate_mapping
from fedmobile_actors.sim.tasks import Task


class PerTaskPool(RayHostPool):
    """The same hosts, reached with one actor call per task (the pool's default path)."""

    def train_many_with_state(
        self,
        tasks: Sequence[Task],
        states: Mapping[int, bytes | None],
        new_states: dict[int, bytes | None],
    ) -> AsyncIterator[tuple[int, bytes]]:
        return HostPool.train_many_with_state(self, tasks, states, new_states)


def scenario_for(phones: int, rounds: int) -> Any:
    mapping = workload_mapping(phones, phones, rounds)
    mapping["algorithm"] = {**mapping["algorithm"], "name": "fedavg_local_momentum"}
    mapping["algorithm"]["momentum"] = 0.9
    mapping["runtime"]["hosts"] = 2
    return validate_mapping(mapping, "bench_stateful_calls")


async def measure(phones: int, rounds: int, repeats: int) -> dict[str, Any]:
    """``repeats`` runs of ``rounds`` rounds per path, the paths alternating run by run; each
    run's first round is a warm-up. A whole run, not a single round, is the unit: the server
    dispatches the next step as soon as it has published a version, so a step trains while
    the round before it evaluates; a run's last round dispatches nothing, so no training
    spills into the other path's timing."""
    scenario = scenario_for(phones, rounds)
    world = World.build(scenario)
    pools: dict[str, RayHostPool] = {}
    for name, cls in (("per_host", RayHostPool), ("per_task", PerTaskPool)):
        pools[name] = cls(start_hosts(scenario, 2))
        pools[name].share(world)
        await pools[name].ready()
    walls: dict[str, list[float]] = {name: [] for name in pools}
    rows: dict[str, list[Any]] = {name: [] for name in pools}
    for rep in range(repeats):
        for name in list(pools) if rep % 2 == 0 else list(reversed(pools)):
            server = Server(scenario, pools[name], None, world)
            run_rows = []
            for r in range(rounds):
                started = time.perf_counter()
                out = await server.run_round()
                assert out is not None
                if r > 0:
                    walls[name].append(time.perf_counter() - started)
                run_rows.append({k: v for k, v in vars(out.metrics).items() if k != "wall_time_s"})
            if rows[name] and rows[name] != run_rows:
                raise AssertionError(f"{name}: a repeated run gave different metrics")
            rows[name] = run_rows
    if rows["per_host"] != rows["per_task"]:
        raise AssertionError("the two paths gave different metrics")
    per_host = statistics.median(walls["per_host"])
    per_task = statistics.median(walls["per_task"])
    return {
        "phones": phones,
        "rounds_timed": len(walls["per_host"]),
        "per_host_call_s": round(per_host, 3),
        "per_task_calls_s": round(per_task, 3),
        "ratio": round(per_task / per_host, 2),
        "same_metrics": True,
        "walls": walls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--phones", type=int, nargs="+", default=[200])
    parser.add_argument("--rounds", type=int, default=4, help="rounds per run (1 warm-up)")
    parser.add_argument("--repeats", type=int, default=4, help="runs per path, alternating")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    try:
        results = [asyncio.run(measure(p, args.rounds, args.repeats)) for p in args.phones]
    finally:
        ray.shutdown()
    print_table(
        "stateful step on 2 Ray hosts: median wall seconds per round (steady rounds)",
        results,
        ["phones", "rounds_timed", "per_host_call_s", "per_task_calls_s", "ratio"],
    )
    write_json(args.json, {"machine": machine(), "results": results})


if __name__ == "__main__":
    main()
