"""Strategy names (as written in scenarios) -> classes."""

from __future__ import annotations

from fedmobile_actors.algorithms.fedavg import FedAvg
from fedmobile_actors.algorithms.fedmobile import FedMobile
from fedmobile_actors.algorithms.fedmobile_no_alpha import FedMobileNoAlpha
from fedmobile_actors.algorithms.fedmobile_no_shapley import FedMobileNoShapley
from fedmobile_actors.algorithms.fedmobile_xmodal import FedMobileXModal
from fedmobile_actors.algorithms.fedprox import FedProx
from fedmobile_actors.algorithms.noise_padding import NoisePadding
from fedmobile_actors.algorithms.strategy import AlgorithmContext, Strategy

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (
        FedAvg,
        FedProx,
        NoisePadding,
        FedMobile,
        FedMobileNoShapley,
        FedMobileNoAlpha,
        FedMobileXModal,
    )
}


def make_strategy(context: AlgorithmContext) -> Strategy:
    name = context.algorithm.name
    if name not in STRATEGIES:
        raise ValueError(f"algorithm {name!r} is not available; known: {', '.join(STRATEGIES)}")
    return STRATEGIES[name](context)
