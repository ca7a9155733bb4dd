"""Model kinds (``model.kind`` in a scenario) -> builders, and what each kind provides.

``MODEL_KINDS`` is a plain dict so another kind (or a resolver of "package.module:name") is one
entry away. A builder takes (shapes, num_classes, config) and returns a ``MultimodalNet``;
``build_model`` seeds torch's global generator around it so initial weights depend on the seed
alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

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
    """The registered kind, or a one-line ScenarioError naming the known ones."""
    if kind not in MODEL_KINDS:
        raise ScenarioError(
            [f"model.kind: {kind!r} is not a model kind; known: {', '.join(MODEL_KINDS)}"]
        )
    return MODEL_KINDS[kind]


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
        return builder(shapes, num_classes, config)
