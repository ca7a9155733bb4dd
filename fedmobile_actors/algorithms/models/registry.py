"""Model kinds (``model.kind`` in a scenario) -> builders, and what each kind provides.

``MODEL_KINDS`` holds the built-in kinds; any other ``model.kind`` is a plug-in (plugins.py): a
name an installed package registered in the ``fedmobile_actors.models`` entry-point group, or
``package.module:name``. A builder takes (shapes, num_classes, config) and returns a
``MultimodalNet``; ``build_model`` seeds torch's global generator around it so initial weights
depend on the seed alone. A plug-in says what it provides with a ``provides`` attribute (a set of
``CAPABILITIES``; none when absent), or is a ``ModelKind`` itself.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from fedmobile_actors.algorithms import plugins
from fedmobile_actors.algorithms.models.authors_conv2d import AuthorsConv2dNet
from fedmobile_actors.algorithms.models.base import MultimodalNet
from fedmobile_actors.algorithms.models.conv1d import Conv1dNet
from fedmobile_actors.algorithms.models.mlp import MlpNet
from fedmobile_actors.errors import ScenarioError
from fedmobile_actors.scenario.schema import ModelConfig

ModelBuilder = Callable[[Mapping[str, tuple[int, int]], int, ModelConfig], MultimodalNet]

#: What a model may offer a strategy (``Strategy.model_needs`` names a subset):
#: ``modality_encoders``: ``encode`` gives a separate feature slice per modality, so a missing
#: modality's slice can be filled; ``linear_head``: ``head`` is one linear layer over the
#: concatenated slices, so each modality's logit contribution is a slice of its weight.
CAPABILITIES = frozenset({"modality_encoders", "linear_head"})


@dataclass(frozen=True)
class ModelKind:
    builder: ModelBuilder
    provides: frozenset[str]
    summary: str


MODEL_KINDS: dict[str, ModelKind] = {
    "conv1d": ModelKind(Conv1dNet, CAPABILITIES, "per-modality Conv1d encoders (default)"),
    "mlp": ModelKind(MlpNet, CAPABILITIES, "per-modality MLP over the flattened window"),
    "authors_conv2d": ModelKind(
        AuthorsConv2dNet, CAPABILITIES, "the FedMobile authors' Conv2d+BatchNorm USC-HAD model"
    ),
}


def model_kind(kind: str) -> ModelKind:
    """The built-in or plug-in kind, or a one-line ScenarioError saying why it is not one."""
    if kind in MODEL_KINDS:
        return MODEL_KINDS[kind]
    ref = plugins.reference(kind, plugins.MODEL_GROUP)
    if ref is None:
        known = [*MODEL_KINDS, *plugins.entry_point_names(plugins.MODEL_GROUP)]
        raise ScenarioError(
            [
                f"model.kind: {kind!r} is not a model kind; known: {', '.join(known)}; "
                "or name your own as package.module:builder"
            ]
        )
    return as_model_kind(plugins.load_object(ref, "model.kind"), kind)


def as_model_kind(obj: object, kind: str) -> ModelKind:
    """A plug-in object as a ``ModelKind``, checked: a ``ModelKind``, a ``MultimodalNet``
    subclass, or a function, callable as (shapes, num_classes, config), whose ``provides`` (if
    any) names known capabilities."""
    where = f"model.kind: {kind!r}"
    if isinstance(obj, ModelKind):
        builder, provides, summary = obj.builder, obj.provides, obj.summary
    else:
        if isinstance(obj, type) and not issubclass(obj, MultimodalNet):
            raise ScenarioError(
                [
                    f"{where} is class {obj.__qualname__}, which does not subclass "
                    "fedmobile_actors.algorithms.models.base.MultimodalNet"
                ]
            )
        if not callable(obj):
            raise ScenarioError(
                [f"{where} is a {type(obj).__name__}, not a model builder (a callable)"]
            )
        builder = obj
        provides = getattr(obj, "provides", frozenset())
        summary = ((inspect.getdoc(obj) or "").splitlines() or [kind])[0]
    if not isinstance(provides, set | frozenset) or not all(isinstance(p, str) for p in provides):
        raise ScenarioError([f"{where}: provides must be a set of capability names"])
    unknown = sorted(set(provides) - CAPABILITIES)
    if unknown:
        raise ScenarioError(
            [
                f"{where}: provides unknown capabilities {', '.join(unknown)}; "
                f"known: {', '.join(sorted(CAPABILITIES))}"
            ]
        )
    _check_signature(builder, where)
    return ModelKind(builder, frozenset(provides), summary)


def _check_signature(builder: object, where: str) -> None:
    """One line unless ``builder`` can be called with (shapes, num_classes, config)."""
    try:
        signature = inspect.signature(builder)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return  # a builtin or C callable without a signature: calling it will tell
    try:
        signature.bind(None, None, None)
    except TypeError:
        raise ScenarioError(
            [
                f"{where} has the wrong signature {signature}; a model builder is called as "
                "builder(shapes, num_classes, config)"
            ]
        ) from None


def build_model(
    kind: str,
    shapes: Mapping[str, tuple[int, int]],
    num_classes: int,
    config: ModelConfig,
    seed: int,
) -> MultimodalNet:
    """A model of ``kind`` whose initial weights depend on ``seed`` alone (global RNG left
    untouched)."""
    builder = model_kind(kind).builder
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = builder(shapes, num_classes, config)
    if not isinstance(model, MultimodalNet):
        raise ScenarioError(
            [f"model.kind: {kind!r} built a {type(model).__name__}, not a MultimodalNet"]
        )
    return model
