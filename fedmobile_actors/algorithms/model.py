"""The local model, as the rest of the package imports it: the contract (``MultimodalNet``), the
array helpers, and ``build_model`` for the scenario's ``model.kind``.

Model kinds live in ``algorithms/models/`` (one file each); this module keeps the old import path
and the old ``build_model(shapes, num_classes, config, seed)`` signature, which builds
``config.kind``.
"""

from __future__ import annotations

from collections.abc import Mapping

from fedmobile_actors.algorithms.models.base import MultimodalNet, get_arrays, set_arrays
from fedmobile_actors.algorithms.models.conv1d import ModalityEncoder
from fedmobile_actors.algorithms.models.registry import build_model as build_model_of_kind
from fedmobile_actors.scenario.schema import ModelConfig

__all__ = ["ModalityEncoder", "MultimodalNet", "build_model", "get_arrays", "set_arrays"]


def build_model(
    shapes: Mapping[str, tuple[int, int]], num_classes: int, config: ModelConfig, seed: int
) -> MultimodalNet:
    """The scenario's model kind (``config.kind``), initial weights from ``seed`` alone."""
    return build_model_of_kind(config.kind, shapes, num_classes, config, seed)
