"""Deal training windows to phones: IID, Dirichlet or shard label skew, or natural by subject.

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
    ShardPartition,
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
    if isinstance(config, ShardPartition):
        return shards(dataset.labels, phones, config.shards_per_phone, seed)
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


def shards(labels: np.ndarray, phones: int, shards_per_phone: int, seed: int) -> list[np.ndarray]:
    """McMahan et al. (2017)'s pathological non-IID split: sort by label, cut, deal shards.

    The windows, sorted by label, are cut into ``phones * shards_per_phone`` shards and each phone
    is dealt ``shards_per_phone`` of them by a seeded shuffle. Why cut within labels instead of
    at equal offsets: an equal cut can straddle two labels, and then "a phone holds at most K
    labels" (what researchers pick K for) no longer holds. Each label gets a number of shards in
    proportion to its windows (largest remainder, at least one), so shards are equal in size up to
    the rounding of each label's share. Which windows of a label share a shard is seeded too.
    """
    total = phones * shards_per_phone
    classes, sizes = np.unique(labels, return_counts=True)
    if total > len(labels):
        raise DataError(
            f"shard partition: {phones} phones x {shards_per_phone} shards = {total} shards, "
            f"more than the {len(labels)} training windows; lower data.partition.shards_per_phone"
        )
    if total < len(classes):
        raise DataError(
            f"shard partition: {total} shards cannot cover {len(classes)} labels; "
            f"raise data.partition.shards_per_phone or fleet.phones"
        )
    quotas = sizes * total / len(labels)
    counts = np.minimum(np.maximum(1, np.floor(quotas).astype(int)), sizes)
    while counts.sum() < total:  # give a shard to the label furthest below its quota
        room = np.where(counts < sizes, quotas - counts, -np.inf)
        counts[int(np.argmax(room))] += 1
    while counts.sum() > total:  # the one-shard floor overshot: take from the furthest above
        excess = np.where(counts > 1, counts - quotas, -np.inf)
        counts[int(np.argmax(excess))] -= 1
    gen = rng(seed, SERVER, 0, "partition/shards")
    pieces: list[np.ndarray] = []
    for k, count in zip(classes, counts.tolist(), strict=True):
        pieces.extend(np.array_split(gen.permutation(np.flatnonzero(labels == k)), count))
    deal = gen.permutation(total).reshape(phones, shards_per_phone)
    return [np.sort(np.concatenate([pieces[i] for i in row])).astype(np.int64) for row in deal]


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


#: A phone's drawn test set has at least this many windows (or the whole test set if smaller),
#: so a phone with a small shard still gets an accuracy that is not all-or-nothing.
MIN_PHONE_TEST = 20


def phone_test_windows(
    shard: MultimodalDataset,
    test: MultimodalDataset,
    train_size: int,
    by_subject: bool,
    seed: int,
    phone_id: int,
) -> np.ndarray:
    """Indices (int64, sorted) into ``test`` of one phone's held-out test windows.

    Why from the test set and not split off the phone's shard: a split of shards would change
    what every phone trains on and so every existing result; the test set is already held out.
    ``by_subject``: the test windows of the shard's subjects, when there are any. Otherwise a
    draw with the shard's label mix, as many windows as the shard's share (of ``train_size``
    training windows) of the test set (at
    least ``MIN_PHONE_TEST``), without replacement within a class where the class has enough
    windows. Keyed by (seed, phone), so the same phone always gets the same windows.
    """
    if len(shard) == 0 or len(test) == 0:
        return np.empty(0, dtype=np.int64)
    if by_subject:
        own = np.flatnonzero(np.isin(test.subjects, np.unique(shard.subjects)))
        if own.size:
            return own.astype(np.int64)
    gen = rng(seed, phone_id, 0, "phone-test")
    counts = np.bincount(shard.labels, minlength=test.num_classes).astype(float)
    classes = [k for k in range(test.num_classes) if np.any(test.labels == k)]
    counts = np.array([counts[k] for k in classes])
    if counts.sum() == 0:
        return np.empty(0, dtype=np.int64)
    size = min(len(test), max(round(len(shard) * len(test) / max(1, train_size)), MIN_PHONE_TEST))
    quotas = counts / counts.sum() * size
    take = np.floor(quotas).astype(int)
    order = np.argsort(-(quotas - take), kind="stable")
    take[order[: size - int(take.sum())]] += 1
    parts = []
    for k, m in zip(classes, take.tolist(), strict=True):
        if m == 0:
            continue
        pool = np.flatnonzero(test.labels == k)
        parts.append(gen.choice(pool, size=m, replace=m > pool.size))
    return np.sort(np.concatenate(parts)).astype(np.int64)
