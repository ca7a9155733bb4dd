"""Load a scenario's dataset and split it: train (dealt to phones), test, optional proxy.

Normalisation is per channel, fitted on the training windows only and applied to all splits, so
no statistic of the test set leaks into training.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from fedmobile_actors.data.dataset import DatasetSplit, MultimodalDataset
from fedmobile_actors.data.proxy import WindowPositions, blocked_indices, whole_group_indices
from fedmobile_actors.data.synthetic import make_synthetic
from fedmobile_actors.errors import DataError
from fedmobile_actors.scenario.schema import (
    DataConfig,
    NpzSource,
    SyntheticSource,
    UscHadSource,
)
from fedmobile_actors.seeding import SERVER, rng

log = logging.getLogger(__name__)


def load_split(config: DataConfig, seed: int, base_dir: str | Path = ".") -> DatasetSplit:
    """The normalised train/test(/proxy) split of the configured source."""
    source = config.source
    positions: WindowPositions | None = None  # where held-out windows came from, when known
    test_groups: np.ndarray | None = None  # the held-out windows' .npz groups, when given
    if isinstance(source, SyntheticSource):
        full = make_synthetic(source, seed)
        train, test = stratified_split(full, config.test_fraction, seed)
    elif isinstance(source, UscHadSource):
        from fedmobile_actors.data.usc_had import load_usc_had_split

        train, test, positions = load_usc_had_split(source, base_dir)
    elif isinstance(source, NpzSource):
        from fedmobile_actors.data.npz_arrays import load_npz_split

        full, test_mask, groups = load_npz_split(source, base_dir)
        if test_mask is not None:
            train, test = (
                full.subset(np.flatnonzero(~test_mask)),
                full.subset(np.flatnonzero(test_mask)),
            )
        elif groups is not None:
            test_mask = group_test_mask(groups, config.test_fraction, seed)
            train, test = (
                full.subset(np.flatnonzero(~test_mask)),
                full.subset(np.flatnonzero(test_mask)),
            )
            test_groups = groups[test_mask]
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
        if config.proxy_split == "blocked" and not isinstance(source, SyntheticSource):
            proxy, test = take_blocked(test, config.proxy_fraction, seed, positions, test_groups)
        else:  # random; synthetic windows are independent, so blocked is the same draw
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
    test_mask = group_test_mask(groups, test_fraction, seed)
    return data.subset(np.flatnonzero(~test_mask)), data.subset(np.flatnonzero(test_mask))


def group_test_mask(groups: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """(N,) bool, True for the windows of the groups ``group_split`` holds out."""
    ids = np.unique(groups)
    if len(ids) < 2:
        raise DataError("npz: 'groups' holds a single group; a group-aware split needs at least 2")
    order = rng(seed, SERVER, 0, "test-split/groups").permutation(ids)
    want = max(1, round(len(groups) * test_fraction))
    test_mask = np.zeros(len(groups), dtype=bool)
    for group in order[:-1]:  # the last group always stays in training
        if test_mask.sum() >= want:
            break
        test_mask |= groups == group
    return test_mask


def take_fraction(
    data: MultimodalDataset, fraction: float, seed: int, purpose: str
) -> tuple[MultimodalDataset, MultimodalDataset]:
    """Split off a random ``fraction`` of ``data``: (taken, rest)."""
    taken, rest = fraction_indices(len(data), fraction, seed, purpose)
    return data.subset(taken), data.subset(rest)


def fraction_indices(
    n: int, fraction: float, seed: int, purpose: str
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (taken, rest) indices of ``take_fraction``; at least one window is taken."""
    order = rng(seed, SERVER, 0, purpose).permutation(n)
    cut = max(1, int(n * fraction))
    return np.sort(order[:cut]), np.sort(order[cut:])


def take_blocked(
    test: MultimodalDataset,
    fraction: float,
    seed: int,
    positions: WindowPositions | None,
    groups: np.ndarray | None,
) -> tuple[MultimodalDataset, MultimodalDataset]:
    """(proxy, test) sharing no raw sample: a block of each recording (positions known, the
    windows overlapping a block are dropped) or whole groups (.npz)."""
    if positions is not None:
        proxy_idx, test_idx = blocked_indices(positions, fraction, seed)
    elif groups is not None:
        if len(np.unique(groups)) < 2:
            raise DataError(
                "data.proxy_split blocked: the held-out windows hold a single npz group; "
                "whole-group proxy and test sets need at least 2"
            )
        proxy_idx, test_idx = whole_group_indices(groups, fraction, seed)
    else:
        raise DataError(
            "data.proxy_split blocked needs the recording of each held-out window: give the "
            ".npz a 'groups' array (and no 'split'), or use data.proxy_split random"
        )
    if len(proxy_idx) == 0 or len(test_idx) == 0:
        side = "proxy" if len(proxy_idx) == 0 else "test"
        raise DataError(
            f"data.proxy_split blocked leaves the {side} set empty ({len(proxy_idx)} proxy, "
            f"{len(test_idx)} test of {len(test)} held-out windows); change "
            "data.proxy_fraction or the windowing"
        )
    log.info(
        "blocked proxy: %d proxy and %d test windows; %d held-out windows dropped (they "
        "overlap a proxy block)",
        len(proxy_idx),
        len(test_idx),
        len(test) - len(proxy_idx) - len(test_idx),
    )
    return test.subset(proxy_idx), test.subset(test_idx)


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
