"""Against the ideal: the round's local training with nothing around it, and the runtime's
efficiency relative to it.

Ideal compute time = one round's training (every phone's 128 windows, one epoch, batch 32) in a
plain single-process loop with one torch thread, after a warm-up. On C cores the best possible
round is that time / C, so ``efficiency = ideal compute time / (round wall time x cores)``.
Also measured, to tell framework overhead from arithmetic:

- ``ideal_parallel_s``: the same training split over C plain processes started together (what
  C cores really give: any shortfall from C x is the machine, not a framework);
- ``local_update_s``: the round through the project's own ``Strategy.local_update`` (masks,
  batching, msgpack encoding) in one process, i.e. the runtime's per-phone work minus Ray.

Usage: ``python -m benchmarks.bench_ideal [--phones 200] [--rounds 4] [--json out.json]``
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import (
    SEED,
    bench_parser,
    logs_dir,
    machine,
    print_table,
    run_figures,
    run_worker,
    workload_data,
    workload_scenario,
    write_json,
)
from benchmarks.plain_loop import plain_train
from fedmobile_actors.algorithms.model import build_model
from fedmobile_actors.algorithms.registry import make_strategy
from fedmobile_actors.runtime.world import World

WARMUP_PHONES = 4


def _plain_round(phones: int, which: list[int], barrier: Any = None) -> float:
    """Seconds to train ``which`` phones with the plain loop (after a warm-up, one thread)."""
    torch.set_num_threads(1)
    split, shards = workload_data(phones)
    scenario = workload_scenario(phones, phones, 2)
    model = build_model(split.train.shapes, split.train.num_classes, scenario.model, SEED)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    tensors = []
    for phone in which:
        shard = split.train.subset(shards[phone])
        inputs = {n: torch.from_numpy(a) for n, a in shard.modalities.items()}
        tensors.append((phone, inputs, torch.from_numpy(shard.labels)))
    for phone, inputs, labels in tensors[:WARMUP_PHONES]:
        plain_train(model, inputs, labels, torch.Generator().manual_seed(phone))
    if barrier is not None:
        barrier.wait()
    start = time.perf_counter()
    for phone, inputs, labels in tensors:
        model.load_state_dict(initial)  # every phone starts from the round's global model
        plain_train(model, inputs, labels, torch.Generator().manual_seed(phone))
    return time.perf_counter() - start


def _parallel_part(args: tuple[int, list[int], Any]) -> float:
    return _plain_round(*args)


def ideal_parallel(phones: int, cores: int) -> float:
    """Wall time of the round's plain training split over ``cores`` processes started together."""
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(cores)
        parts = [list(range(phones))[i::cores] for i in range(cores)]
        with ctx.Pool(cores) as pool:
            return max(pool.map(_parallel_part, [(phones, p, barrier) for p in parts]))


def local_update_round(phones: int) -> float:
    """The round through the project's own ``local_update`` (and msgpack encode), one process."""
    from fedmobile_actors.wire import encode_update

    torch.set_num_threads(1)
    scenario = workload_scenario(phones, phones, 2)
    world = World.build(scenario)
    strategy = make_strategy(world.context())
    payload = strategy.payload(strategy.initial_state())
    data = [world.local_data(p) for p in range(phones)]
    for p in range(WARMUP_PHONES):
        strategy.local_update(payload, data[p], p, 0, p)
    start = time.perf_counter()
    for p in range(phones):
        encode_update(strategy.local_update(payload, data[p], p, 0, p))
    return time.perf_counter() - start


def measure_ideal(phones: int) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    serial = _plain_round(phones, list(range(phones)))
    return {
        "phones": phones,
        "cores": cores,
        "ideal_serial_s": serial,
        "ideal_round_s": serial / cores,
        "ideal_parallel_s": ideal_parallel(phones, cores),
        "local_update_s": local_update_round(phones),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def measure_runtime(
    phones: int,
    per_round: int,
    rounds: int,
    logs: Path,
    mem_limit_bytes: int | None = None,
    on_demand: bool = False,
) -> dict[str, Any]:
    """This project's Ray runtime in a child process: start-up, rounds, peak memory
    (``on_demand``: per-phone data made when dispatched)."""
    argv = [
        "benchmarks.fedmobile_worker",
        "--phones", str(phones),
        "--per-round", str(per_round),
        "--rounds", str(rounds),
        *(["--on-demand"] if on_demand else []),
    ]  # fmt: skip
    load = [round(x, 2) for x in os.getloadavg()]
    data, launched, mem = run_worker(
        argv,
        timeout_s=1800,
        log_path=logs / f"fedmobile-{phones}-{per_round}{'-on-demand' if on_demand else ''}.log",
        mem_limit_bytes=mem_limit_bytes,
    )
    figures = run_figures(
        "fedmobile-actors", phones, per_round, rounds, data, launched, data["backend_ready_at"],
        mem.peak_bytes, mem.peak_processes, load,
    )  # fmt: skip
    return {**figures, "hosts": data["hosts"]}


def main() -> None:
    parser = bench_parser(__doc__, [200], 4)
    args = parser.parse_args()
    logs = logs_dir(args)
    rows = []
    for phones in args.phones:
        ideal = measure_ideal(phones)
        ours = measure_runtime(phones, phones, args.rounds, logs)
        cores = ideal["cores"]
        rows.append(
            {
                **ideal,
                "runtime_steady_round_s": ours["steady_round_s"],
                "efficiency": ideal["ideal_serial_s"] / (ours["steady_round_s"] * cores),
                "parallel_efficiency": ideal["ideal_serial_s"]
                / (ideal["ideal_parallel_s"] * cores),
                "runtime": ours,
            }
        )
    print_table(
        "Against the ideal (seconds per round; efficiency = ideal serial / (round x cores))",
        rows,
        [
            "phones", "ideal_serial_s", "ideal_round_s", "ideal_parallel_s", "local_update_s",
            "runtime_steady_round_s", "efficiency", "parallel_efficiency",
        ],
    )  # fmt: skip
    write_json(args.json, {"benchmark": "ideal", "machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()
