"""Strategy names (as written in scenarios) -> classes."""

from __future__ import annotations

from fedmobile_actors.algorithms.fedavg import FedAvg
from fedmobile_actors.algorithms.strategy import AlgorithmContext, Strategy

STRATEGIES: dict[str, type[Strategy]] = {
    FedAvg.name: FedAvg,
}


def make_strategy(context: AlgorithmContext) -> Strategy:
    name = context.algorithm.name
    if name not in STRATEGIES:
        raise ValueError(f"algorithm {name!r} is not available; known: {', '.join(STRATEGIES)}")
    return STRATEGIES[name](context)
