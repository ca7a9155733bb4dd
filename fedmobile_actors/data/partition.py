"""Deal training windows to phones: IID, Dirichlet label skew, or natural by subject.

All partitioners are pure functions of (labels or subjects, number of phones, seed) and return one
index array per phone, so any host can recompute its phones' shards without asking anyone.
"""

from __future__ import annotations

import numpy as np

from fedmobile_actors.data.dataset import MultimodalDataset
from fedmobile_actors.errors import DataError
from fedmobile_actors.scenario.schema import (
    DirichletPartition,
    IidPartition,
    Partition,
    SubjectPartition,
)
from fedmobile_actors.seeding import SERVER, rng


def partition(
    dataset: MultimodalDataset, phones: int, config: Partition, seed: int
) -> list[np.ndarray]:
    """Index arrays (sorted, int64) into ``dataset``, one per phone."""
    if isinstance(config, IidPartition):
        return iid(len(dataset), phones, seed)
    if isinstance(config, DirichletPartition):
        return dirichlet(dataset.labels, phones, config.alpha, config.min_samples, seed)
    if isinstance(config, SubjectPartition):
        return by_subject(dataset.subjects, phones)
    raise TypeError(f"unknown partition {config!r}")


def iid(n: int, phones: int, seed: int) -> list[np.ndarray]:
    if n < phones:
        raise DataError(f"{n} training windows cannot be dealt to {phones} phones (IID)")
    order = rng(seed, SERVER, 0, "partition/iid").permutation(n)
    return [np.sort(part).astype(np.int64) for part in np.array_split(order, phones)]


def dirichlet(
    labels: np.ndarray, phones: int, alpha: float, min_samples: int, seed: int
) -> list[np.ndarray]:
    """Split each class by Dirichlet(alpha) proportions; redraw until each phone has enough.

    The redraw is the standard remedy (used by FedML and Flower Datasets) for phones left with
    nothing at small alpha; after 100 draws it gives up with a clear error.
    """
    gen = rng(seed, SERVER, 0, "partition/dirichlet")
    classes = np.unique(labels)
    need = min(min_samples, max(1, len(labels) // phones))
    for _ in range(100):
        shards: list[list[np.ndarray]] = [[] for _ in range(phones)]
        for k in classes:
            idx = gen.permutation(np.flatnonzero(labels == k))
            share = gen.dirichlet(np.full(phones, alpha))
            cuts = (np.cumsum(share)[:-1] * len(idx)).astype(int)
            for phone, part in enumerate(np.split(idx, cuts)):
                shards[phone].append(part)
        out = [np.sort(np.concatenate(s)).astype(np.int64) for s in shards]
        if min(len(s) for s in out) >= need:
            return out
    raise DataError(
        f"Dirichlet partition (alpha={alpha}) left a phone with fewer than {need} windows "
        f"after 100 draws; raise alpha or lower min_samples"
    )


def by_subject(subjects: np.ndarray, phones: int) -> list[np.ndarray]:
    """Phone i holds subject ``ids[i % S]``; with more phones than subjects a subject's windows
    are split between the phones that share it, so no window is given twice."""
    ids = np.unique(subjects)
    owners: dict[int, list[int]] = {int(s): [] for s in ids}
    for phone in range(phones):
        owners[int(ids[phone % len(ids)])].append(phone)
    out: list[np.ndarray] = [np.empty(0, dtype=np.int64) for _ in range(phones)]
    for subject, owner_list in owners.items():
        if not owner_list:
            continue
        idx = np.flatnonzero(subjects == subject)
        for phone, part in zip(owner_list, np.array_split(idx, len(owner_list)), strict=True):
            out[phone] = part.astype(np.int64)
    if min(len(s) for s in out) == 0:
        raise DataError(f"natural partition: {phones} phones share too few subject windows")
    return out
