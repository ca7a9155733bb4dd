"""Load a scenario's dataset and split it: train (dealt to phones), test, optional proxy.

Normalisation is per channel, fitted on the training windows only and applied to all splits, so
no statistic of the test set leaks into training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fedmobile_actors.data.dataset import DatasetSplit, MultimodalDataset
from fedmobile_actors.data.synthetic import make_synthetic
from fedmobile_actors.errors import DataError
from fedmobile_actors.scenario.schema import (
    DataConfig,
    NpzSource,
    SyntheticSource,
    UscHadSource,
)
from fedmobile_actors.seeding import SERVER, rng


def load_split(config: DataConfig, seed: int, base_dir: str | Path = ".") -> DatasetSplit:
    """The normalised train/test(/proxy) split of the configured source."""
    source = config.source
    if isinstance(source, SyntheticSource):
        full = make_synthetic(source, seed)
        train, test = stratified_split(full, config.test_fraction, seed)
    elif isinstance(source, UscHadSource):
        from fedmobile_actors.data.usc_had import load_usc_had

        train, test = load_usc_had(source, base_dir)
    elif isinstance(source, NpzSource):
        from fedmobile_actors.data.npz_arrays import load_npz_split

        full, test_mask, groups = load_npz_split(source, base_dir)
        if test_mask is not None:
            train, test = (
                full.subset(np.flatnonzero(~test_mask)),
                full.subset(np.flatnonzero(test_mask)),
            )
        elif groups is not None:
            train, test = group_split(full, groups, config.test_fraction, seed)
        else:
            train, test = stratified_split(full, config.test_fraction, seed)
    else:  # pragma: no cover - the schema admits no other source
        raise TypeError(f"unknown data source {source!r}")
    if len(test) == 0 or len(train) == 0:
        side = "held-out (test)" if len(test) == 0 else "training"
        raise DataError(
            f"data: the {side} set is empty ({len(train)} train, {len(test)} test windows); "
            "add windows or change data.test_fraction"
        )
    train, test = normalise(train, test)
    proxy = None
    if config.proxy_fraction > 0:
        proxy, test = take_fraction(test, config.proxy_fraction, seed, "proxy")
    return DatasetSplit(train=train, test=test, proxy=proxy)


def stratified_split(
    data: MultimodalDataset, test_fraction: float, seed: int
) -> tuple[MultimodalDataset, MultimodalDataset]:
    """Hold out ``test_fraction`` of each class (at least one window per class when possible)."""
    gen = rng(seed, SERVER, 0, "test-split")
    test_idx = []
    for k in np.unique(data.labels):
        idx = gen.permutation(np.flatnonzero(data.labels == k))
        take = max(1, round(len(idx) * test_fraction)) if len(idx) > 1 else 0
        test_idx.append(idx[:take])
    test_mask = np.zeros(len(data), dtype=bool)
    test_mask[np.concatenate(test_idx)] = True
    return data.subset(np.flatnonzero(~test_mask)), data.subset(np.flatnonzero(test_mask))


def group_split(
    data: MultimodalDataset, groups: np.ndarray, test_fraction: float, seed: int
) -> tuple[MultimodalDataset, MultimodalDataset]:
    """Hold out whole groups (recordings) until ``test_fraction`` of the windows is reached.

    Why: windows cut with overlap from one recording are near copies; a window-level split puts
    copies on both sides and overstates accuracy. Groups are taken in a seeded random order.
    """
    ids = np.unique(groups)
    if len(ids) < 2:
        raise DataError("npz: 'groups' holds a single group; a group-aware split needs at least 2")
    order = rng(seed, SERVER, 0, "test-split/groups").permutation(ids)
    want = max(1, round(len(data) * test_fraction))
    test_mask = np.zeros(len(data), dtype=bool)
    for group in order[:-1]:  # the last group always stays in training
        if test_mask.sum() >= want:
            break
        test_mask |= groups == group
    return data.subset(np.flatnonzero(~test_mask)), data.subset(np.flatnonzero(test_mask))


def take_fraction(
    data: MultimodalDataset, fraction: float, seed: int, purpose: str
) -> tuple[MultimodalDataset, MultimodalDataset]:
    """Split off a random ``fraction`` of ``data``: (taken, rest)."""
    order = rng(seed, SERVER, 0, purpose).permutation(len(data))
    cut = max(1, int(len(data) * fraction))
    return data.subset(np.sort(order[:cut])), data.subset(np.sort(order[cut:]))


def normalise(
    train: MultimodalDataset, test: MultimodalDataset
) -> tuple[MultimodalDataset, MultimodalDataset]:
    """Per-channel z-score with mean and std of the training windows."""
    mods_train, mods_test = {}, {}
    for name, x in train.modalities.items():
        mean = x.mean(axis=(0, 2), keepdims=True)
        std = x.std(axis=(0, 2), keepdims=True) + 1e-6
        mods_train[name] = ((x - mean) / std).astype(np.float32)
        mods_test[name] = ((test.modalities[name] - mean) / std).astype(np.float32)
    return (
        MultimodalDataset(mods_train, train.labels, train.subjects, train.num_classes),
        MultimodalDataset(mods_test, test.labels, test.subjects, test.num_classes),
    )
