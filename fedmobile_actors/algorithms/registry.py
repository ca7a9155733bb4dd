"""Strategy names (as written in scenarios) -> classes."""

from __future__ import annotations

from fedmobile_actors.algorithms.fedavg import FedAvg
from fedmobile_actors.algorithms.fedavg_local_momentum import FedAvgLocalMomentum
from fedmobile_actors.algorithms.fedmobile import FedMobile
from fedmobile_actors.algorithms.fedmobile_authors import FedMobileAuthors
from fedmobile_actors.algorithms.fedmobile_no_alpha import FedMobileNoAlpha
from fedmobile_actors.algorithms.fedmobile_no_shapley import FedMobileNoShapley
from fedmobile_actors.algorithms.fedprox import FedProx
from fedmobile_actors.algorithms.models.registry import model_kind
from fedmobile_actors.algorithms.noise_padding import NoisePadding
from fedmobile_actors.algorithms.strategy import AlgorithmContext, Strategy
from fedmobile_actors.errors import ScenarioError
from fedmobile_actors.scenario.schema import AlgorithmConfig, ModelConfig

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (
        FedAvg,
        FedAvgLocalMomentum,
        FedProx,
        NoisePadding,
        FedMobile,
        FedMobileNoShapley,
        FedMobileNoAlpha,
        FedMobileAuthors,
    )
}


def strategy_class(name: str) -> type[Strategy]:
    if name not in STRATEGIES:
        raise ScenarioError(
            [f"algorithm.name: {name!r} is not available; known: {', '.join(STRATEGIES)}"]
        )
    return STRATEGIES[name]


def check_model(algorithm: AlgorithmConfig, model: ModelConfig) -> None:
    """One ScenarioError line when the model kind is unknown or lacks what the strategy needs;
    builds nothing (``fedmobile validate`` calls it)."""
    needs = strategy_class(algorithm.name).model_needs
    provides = model_kind(model.kind).provides
    missing = sorted(needs - provides)
    if missing:
        raise ScenarioError(
            [
                f"model.kind: {model.kind!r} lacks {', '.join(missing)}, which algorithm "
                f"{algorithm.name!r} needs (it provides: {', '.join(sorted(provides)) or 'none'})"
            ]
        )


def make_strategy(context: AlgorithmContext) -> Strategy:
    check_model(context.algorithm, context.model)
    return strategy_class(context.algorithm.name)(context)
