"""The server's own work on one round's updates: decode, aggregate (buffered and streamed),
encode the new payload. Process time, best of three, one torch thread.

These are what the server did after the last update arrived before streaming aggregation (the
hosts idle meanwhile); with it, decoding and summing happen while hosts train.

Usage: ``python -m benchmarks.bench_aggregate [--phones 200]``
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
import torch

from benchmarks.common import workload_scenario
from fedmobile_actors.algorithms.registry import make_strategy
from fedmobile_actors.algorithms.strategy import ClientUpdate, Slot
from fedmobile_actors.runtime.world import World
from fedmobile_actors.wire import decode_update, encode_arrays, encode_update


def best_of(run: Callable[[], object], repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--phones", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    world = World.build(workload_scenario(args.phones, args.phones, 2))
    strategy = make_strategy(world.context())
    state = strategy.initial_state()
    payload = strategy.payload(state)
    expected = strategy.update_shapes(payload)
    trained = strategy.local_update(payload, world.local_data(0), 0, 0, 0)
    rng = np.random.default_rng(0)
    blobs = [
        encode_update(
            ClientUpdate(
                p,
                0,
                trained.num_samples,
                {
                    k: a + rng.standard_normal(a.shape).astype(np.float32)
                    for k, a in trained.arrays.items()
                },
                trained.metrics,
            )
        )
        for p in range(args.phones)
    ]
    updates = [decode_update(b, expected) for b in blobs]
    fresh = [1.0] * args.phones
    slots = [Slot(p, trained.num_samples, 1.0) for p in range(args.phones)]

    def streamed() -> object:
        accumulator = strategy.begin_round(state, slots)
        for i, update in enumerate(updates):
            accumulator.add(i, update, 1.0)
        return accumulator.finish()

    figures = {
        "decode_s": best_of(lambda: [decode_update(b, expected) for b in blobs]),
        "aggregate_s": best_of(lambda: strategy.aggregate(state, updates, fresh)),
        "streamed_s": best_of(streamed),
        "encode_payload_s": best_of(lambda: encode_arrays(strategy.payload(state))),
    }
    print(f"{args.phones} updates of {len(blobs[0]):,} bytes; load {os.getloadavg()[0]:.1f}")
    for name, seconds in figures.items():
        print(f"  {name:18s} {seconds * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
