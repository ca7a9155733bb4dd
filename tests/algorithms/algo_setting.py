"""Tiny synthetic settings for the algorithms tests (a fleet of 6 phones, acc + gyro)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fedmobile_actors.algorithms.registry import make_strategy
from fedmobile_actors.algorithms.strategy import AlgorithmContext, Strategy
from fedmobile_actors.data.dataset import DatasetSplit, LocalData
from fedmobile_actors.data.loading import load_split
from fedmobile_actors.data.masking import presence
from fedmobile_actors.data.partition import partition
from fedmobile_actors.scenario.schema import (
    AlgorithmConfig,
    DataConfig,
    FedMobileConfig,
    IidPartition,
    ModalityShape,
    ModelConfig,
    SyntheticSource,
)

SEED = 7
PHONES = 6
TINY_MODEL = ModelConfig(conv_channels=(8,), kernel_size=3)


@dataclass(frozen=True)
class Setting:
    """A split, per-phone local data with the paper's missing pattern, and the test masks."""

    split: DatasetSplit
    phones: tuple[LocalData, ...]
    full: dict[str, np.ndarray]
    missing: dict[str, np.ndarray]


def build_setting(
    missing_rate: float = 0.8, proxy_fraction: float = 0.3, samples: int = 900
) -> Setting:
    """Synthetic acc/gyro data; gyro missing at ``missing_rate`` on every phone and at test."""
    source = SyntheticSource(
        num_classes=4,
        samples=samples,
        modalities=(
            ModalityShape(name="acc", channels=3, steps=16),
            ModalityShape(name="gyro", channels=3, steps=16),
        ),
        correlation=0.8,
        noise=0.3,
    )
    config = DataConfig(source=source, partition=IidPartition(), proxy_fraction=proxy_fraction)
    split = load_split(config, SEED)
    names = split.train.modality_names
    shards = partition(split.train, PHONES, config.partition, SEED)
    phones = tuple(
        LocalData(
            split.train.subset(idx),
            presence(len(idx), {"gyro": missing_rate}, names, SEED, phone),
        )
        for phone, idx in enumerate(shards)
    )
    n = len(split.test)
    full = {m: np.ones(n, dtype=bool) for m in names}
    missing = presence(n, {"gyro": missing_rate}, names, SEED, 10_000)
    return Setting(split, phones, full, missing)


def make_context(
    setting: Setting,
    name: str,
    fedmobile: FedMobileConfig | None = None,
    learnable: Sequence[str] = ("acc", "gyro"),
    with_proxy: bool = True,
    **algorithm: object,
) -> AlgorithmContext:
    algo = AlgorithmConfig(
        name=name,
        batch_size=16,
        lr=0.1,
        fedmobile=fedmobile or FedMobileConfig(probe_size=32, generator_steps=10, clusters=3),
        **algorithm,
    )
    return AlgorithmContext(
        shapes=setting.split.train.shapes,
        num_classes=setting.split.train.num_classes,
        model=TINY_MODEL,
        algorithm=algo,
        seed=SEED,
        learnable=tuple(learnable),
        proxy=setting.split.proxy if with_proxy else None,
    )


def strategy_for(setting: Setting, name: str, **kwargs: object) -> Strategy:
    return make_strategy(make_context(setting, name, **kwargs))  # type: ignore[arg-type]


def plain_weighted_average(
    arrays: Sequence[Mapping[str, np.ndarray]],
    weights: Sequence[float],
    out: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """The whole-array formula the committed runs were made with (one float64 accumulator,
    ``acc += w_k * x_k``, fresh arrays): the reference the blocked sums must match bit for bit.
    ``out`` is accepted and ignored, so it can stand in for ``weighted_average``."""
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    result = {}
    for name, first in arrays[0].items():
        acc = np.zeros(first.shape, dtype=np.float64)
        for wk, a in zip(w, arrays, strict=True):
            acc += wk * a[name]
        result[name] = acc.astype(first.dtype)
    return result
