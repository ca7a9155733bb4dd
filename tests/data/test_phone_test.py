"""phone_test_windows: each phone's held-out test windows, like its own data, fixed by the seed."""

from __future__ import annotations

from collections import Counter

import numpy as np

from fedmobile_actors.data.dataset import MultimodalDataset
from fedmobile_actors.data.partition import MIN_PHONE_TEST, phone_test_windows


def _data(labels: list[int], subjects: list[int]) -> MultimodalDataset:
    n = len(labels)
    return MultimodalDataset(
        {"acc": np.zeros((n, 1, 4), dtype=np.float32)},
        np.asarray(labels, dtype=np.int64),
        np.asarray(subjects, dtype=np.int64),
        num_classes=3,
    )


TEST = _data([0, 1, 2] * 40, [0] * 60 + [1] * 60)


def test_by_subject_a_phone_gets_its_subjects_test_windows() -> None:
    shard = _data([0, 1], [1, 1])
    index = phone_test_windows(shard, TEST, 100, by_subject=True, seed=0, phone_id=4)
    assert index.tolist() == list(range(60, 120))


def test_a_subject_without_test_windows_falls_back_to_the_label_mix() -> None:
    shard = _data([0, 0], [7, 7])
    index = phone_test_windows(shard, TEST, 100, by_subject=True, seed=0, phone_id=4)
    assert set(TEST.labels[index].tolist()) == {0}


def test_otherwise_the_draw_follows_the_shards_label_mix_and_size() -> None:
    """A shard of 40 windows (3/4 class 0) out of 100 training windows -> 48 of 120 test ones."""
    shard = _data([0] * 30 + [2] * 10, [0] * 40)
    index = phone_test_windows(shard, TEST, 100, by_subject=False, seed=0, phone_id=1)
    assert Counter(TEST.labels[index].tolist()) == {0: 36, 2: 12}
    small = phone_test_windows(shard, TEST, 10_000, by_subject=False, seed=0, phone_id=1)
    assert len(small) == MIN_PHONE_TEST


def test_the_draw_is_fixed_by_seed_and_phone() -> None:
    shard = _data([0, 1, 2] * 10, [0] * 30)
    first = phone_test_windows(shard, TEST, 100, False, seed=5, phone_id=2)
    assert np.array_equal(first, phone_test_windows(shard, TEST, 100, False, 5, 2))
    assert not np.array_equal(first, phone_test_windows(shard, TEST, 100, False, 5, 3))
