"""Strategy names (as written in scenarios) -> classes: built-ins, entry points, import paths.

``algorithm.name`` is a built-in name (``STRATEGIES``), a name an installed package registered in
the ``fedmobile_actors.strategies`` entry-point group, or ``package.module:ClassName``
(plugins.py). Whatever the source, the class is checked the same way before any process starts:
it must be a concrete ``Strategy`` subclass whose ``model_needs`` are known capabilities, and the
scenario's model kind must provide them.
"""

from __future__ import annotations

import inspect

from fedmobile_actors.algorithms import plugins
from fedmobile_actors.algorithms.fedavg import FedAvg
from fedmobile_actors.algorithms.fedavg_local_momentum import FedAvgLocalMomentum
from fedmobile_actors.algorithms.fedmobile import FedMobile
from fedmobile_actors.algorithms.fedmobile_authors import FedMobileAuthors
from fedmobile_actors.algorithms.fedmobile_no_alpha import FedMobileNoAlpha
from fedmobile_actors.algorithms.fedmobile_no_shapley import FedMobileNoShapley
from fedmobile_actors.algorithms.fedmobile_xmodal import FedMobileXModal
from fedmobile_actors.algorithms.fedprox import FedProx
from fedmobile_actors.algorithms.models.registry import CAPABILITIES, model_kind
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
        FedMobileXModal,
        FedMobileAuthors,
    )
}


def strategy_class(name: str) -> type[Strategy]:
    """The strategy class ``algorithm.name`` names, or one ScenarioError line saying why not."""
    if name in STRATEGIES:
        return STRATEGIES[name]
    ref = plugins.reference(name, plugins.STRATEGY_GROUP)
    if ref is None:
        known = [*STRATEGIES, *plugins.entry_point_names(plugins.STRATEGY_GROUP)]
        raise ScenarioError(
            [
                f"algorithm.name: {name!r} is not available; known: {', '.join(known)}; "
                "or name your own as package.module:ClassName"
            ]
        )
    return check_strategy_class(plugins.load_object(ref, "algorithm.name"), name)


def check_strategy_class(obj: object, name: str) -> type[Strategy]:
    """``obj`` as a strategy class, or one line: not a class, not a Strategy, abstract, or
    needing model capabilities nobody provides."""
    where = f"algorithm.name: {name!r}"
    if not isinstance(obj, type):
        raise ScenarioError(
            [f"{where} is a {type(obj).__name__}, not a Strategy subclass (a class)"]
        )
    if not issubclass(obj, Strategy):
        raise ScenarioError(
            [
                f"{where} is class {obj.__qualname__}, which does not subclass "
                "fedmobile_actors.algorithms.strategy.Strategy"
            ]
        )
    if inspect.isabstract(obj):
        missing = ", ".join(sorted(getattr(obj, "__abstractmethods__", ())))
        raise ScenarioError([f"{where}: {obj.__qualname__} does not implement {missing}"])
    unknown = sorted(set(obj.model_needs) - CAPABILITIES)
    if unknown:
        raise ScenarioError(
            [
                f"{where}: model_needs names unknown capabilities {', '.join(unknown)}; "
                f"known: {', '.join(sorted(CAPABILITIES))}"
            ]
        )
    return obj


def check_model(algorithm: AlgorithmConfig, model: ModelConfig) -> None:
    """Resolve the strategy and the model kind (importing plug-ins) and check that the model
    provides what the strategy needs; one ScenarioError line if not. Builds nothing
    (``fedmobile validate`` calls it)."""
    needs = strategy_class(algorithm.name).model_needs
    if algorithm.name in STRATEGIES and algorithm.options:
        raise ScenarioError(
            [
                f"algorithm.options: built-in strategy {algorithm.name!r} takes no options "
                f"(given: {', '.join(sorted(algorithm.options))}); they are for plug-ins"
            ]
        )
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
