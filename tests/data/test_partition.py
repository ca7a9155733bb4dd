"""Partitioners: every window dealt exactly once, the same for the same seed, skew as configured."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fedmobile_actors.data.dataset import MultimodalDataset
from fedmobile_actors.data.partition import by_subject, dirichlet, iid, partition, shards
from fedmobile_actors.errors import DataError
from fedmobile_actors.scenario.schema import (
    DirichletPartition,
    IidPartition,
    ShardPartition,
    SubjectPartition,
)

LABELS = np.arange(3000) % 6


def assert_disjoint_cover(parts: list[np.ndarray], n: int) -> None:
    joined = np.concatenate(parts)
    assert len(joined) == n  # nothing twice...
    assert np.array_equal(np.sort(joined), np.arange(n))  # ...and nothing left out
    assert all(p.dtype == np.int64 and np.all(np.diff(p) > 0) for p in parts)


def label_skew(labels: np.ndarray, parts: list[np.ndarray]) -> float:
    """Mean total-variation distance between a phone's label mix and the global one."""
    k = int(labels.max()) + 1
    overall = np.bincount(labels, minlength=k) / len(labels)
    return float(
        np.mean(
            [
                0.5 * np.abs(np.bincount(labels[p], minlength=k) / len(p) - overall).sum()
                for p in parts
            ]
        )
    )


def test_iid_is_disjoint_balanced_and_deterministic() -> None:
    """IID deals 1003 windows to 10 phones in shards of 100 or 101, the same for the same seed."""
    parts = iid(1003, 10, seed=1)
    assert_disjoint_cover(parts, 1003)
    assert {len(p) for p in parts} == {100, 101}
    assert all(np.array_equal(a, b) for a, b in zip(parts, iid(1003, 10, seed=1), strict=True))
    assert not np.array_equal(parts[0], iid(1003, 10, seed=2)[0])


def test_iid_with_more_phones_than_windows_is_a_data_error() -> None:
    with pytest.raises(DataError, match="cannot be dealt to 11 phones"):
        iid(10, 11, seed=0)


def test_dirichlet_is_disjoint_covering_and_deterministic() -> None:
    parts = dirichlet(LABELS, 10, alpha=0.5, min_samples=8, seed=3)
    assert_disjoint_cover(parts, len(LABELS))
    again = dirichlet(LABELS, 10, alpha=0.5, min_samples=8, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    assert min(len(p) for p in parts) >= 8


def test_dirichlet_skew_grows_as_alpha_shrinks() -> None:
    """Averaged over seeds, label skew rises monotonically from alpha=100 to alpha=0.1."""
    skews = [
        np.mean([label_skew(LABELS, dirichlet(LABELS, 10, alpha, 8, seed)) for seed in range(3)])
        for alpha in (100.0, 10.0, 1.0, 0.1)
    ]
    assert all(a < b for a, b in itertools.pairwise(skews)), skews
    assert skews[0] < 0.1 < 0.5 < skews[-1]


def test_dirichlet_that_cannot_fill_phones_is_a_data_error() -> None:
    """Two windows of one class cannot give 5 phones 8 windows each... nor even one each."""
    with pytest.raises(DataError, match="Dirichlet partition"):
        dirichlet(np.zeros(6, dtype=np.int64), 5, alpha=0.01, min_samples=8, seed=0)


@pytest.mark.parametrize("shards_per_phone", [1, 2, 3])
def test_shards_give_each_phone_at_most_k_labels(shards_per_phone: int) -> None:
    """Uneven labels (sizes 100..600) still leave each phone with at most K labels."""
    labels = np.repeat(np.arange(6), [100, 200, 300, 400, 500, 600])
    parts = shards(labels, 20, shards_per_phone, seed=0)
    assert len(parts) == 20
    assert max(len(np.unique(labels[p])) for p in parts) <= shards_per_phone
    assert min(len(p) for p in parts) > 0


def test_shards_deal_every_window_once() -> None:
    labels = np.repeat(np.arange(6), [100, 200, 300, 400, 500, 601])
    assert_disjoint_cover(shards(labels, 17, 2, seed=4), len(labels))


def test_shards_with_one_per_phone_split_each_label_between_its_share_of_phones() -> None:
    """3000 balanced windows, 48 phones x 1 shard: each of the 6 labels lives on 8 phones."""
    parts = shards(LABELS, 48, 1, seed=2)
    main = [int(LABELS[p][0]) for p in parts]
    assert np.bincount(main, minlength=6).tolist() == [8] * 6
    assert {len(p) for p in parts} == {62, 63}


def test_shards_same_seed_same_split_other_seed_other_split() -> None:
    parts = shards(LABELS, 10, 2, seed=3)
    again = shards(LABELS, 10, 2, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    other = shards(LABELS, 10, 2, seed=4)
    assert not all(np.array_equal(a, b) for a, b in zip(parts, other, strict=True))


def test_shards_more_than_windows_is_a_data_error() -> None:
    with pytest.raises(DataError, match="more than the 10 training windows"):
        shards(np.arange(10) % 2, 6, 2, seed=0)


def test_shards_fewer_than_labels_is_a_data_error() -> None:
    with pytest.raises(DataError, match="4 shards cannot cover 6 labels"):
        shards(LABELS, 2, 2, seed=0)


def test_by_subject_gives_each_phone_one_subject() -> None:
    """With as many phones as subjects, phone i holds exactly subject i's windows."""
    subjects = np.repeat([3, 5, 9], [4, 6, 5])
    parts = by_subject(subjects, 3)
    assert_disjoint_cover(parts, len(subjects))
    assert [set(subjects[p]) for p in parts] == [{3}, {5}, {9}]


def test_by_subject_splits_a_subject_between_phones_that_share_it() -> None:
    """Five phones over two subjects: phones 0, 2, 4 share subject 0's windows without overlap."""
    subjects = np.repeat([0, 1], [30, 20])
    parts = by_subject(subjects, 5)
    assert_disjoint_cover(parts, len(subjects))
    assert [int(subjects[p][0]) for p in parts] == [0, 1, 0, 1, 0]
    assert all(len(set(subjects[p])) == 1 for p in parts)


def test_by_subject_with_too_few_windows_is_a_data_error() -> None:
    with pytest.raises(DataError, match="natural partition"):
        by_subject(np.array([0, 1]), 4)


def test_partition_dispatches_on_the_config() -> None:
    """partition() runs the partitioner its config names."""
    n = 60
    data = MultimodalDataset(
        modalities={"acc": np.zeros((n, 1, 4), dtype=np.float32)},
        labels=np.arange(n) % 3,
        subjects=np.arange(n) % 4,
        num_classes=3,
    )
    iid_parts = partition(data, 4, IidPartition(), seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(iid_parts, iid(n, 4, 0), strict=True))
    dir_parts = partition(data, 4, DirichletPartition(alpha=1.0, min_samples=2), seed=0)
    assert_disjoint_cover(dir_parts, n)
    shard_parts = partition(data, 4, ShardPartition(shards_per_phone=1), seed=0)
    assert all(len(set(data.labels[p])) == 1 for p in shard_parts)
    subj_parts = partition(data, 4, SubjectPartition(), seed=0)
    assert [set(data.subjects[p]) for p in subj_parts] == [{0}, {1}, {2}, {3}]
