"""k-means over generator signatures: deterministic, separates what differs, caps K sensibly."""

from __future__ import annotations

import numpy as np
import torch

from fedmobile_actors.algorithms.clustering import (
    cluster_representatives,
    generator_signatures,
    kmeans_labels,
)
from fedmobile_actors.algorithms.generator import FeatureGenerator, probe_batch
from fedmobile_actors.algorithms.model import get_arrays


def two_blobs() -> np.ndarray:
    gen = np.random.default_rng(0)
    return np.concatenate([gen.normal(0, 0.1, (5, 8)), gen.normal(5, 0.1, (7, 8))])


def test_kmeans_separates_two_obvious_groups_numbered_by_first_member() -> None:
    labels = kmeans_labels(two_blobs(), 2, seed=3)
    assert labels.tolist() == [0] * 5 + [1] * 7


def test_kmeans_is_deterministic_under_a_fixed_seed() -> None:
    x = np.random.default_rng(1).normal(size=(40, 6))
    assert kmeans_labels(x, 4, seed=9).tobytes() == kmeans_labels(x, 4, seed=9).tobytes()


def test_k_is_capped_by_reports_and_distinct_rows() -> None:
    x = np.repeat(np.array([[0.0, 1.0], [3.0, 3.0]]), 3, axis=0)  # 6 rows, 2 distinct
    assert kmeans_labels(x, 5, seed=0).max() == 1
    assert kmeans_labels(x[:1], 5, seed=0).tolist() == [0]
    assert kmeans_labels(np.zeros((0, 2)), 3, seed=0).tolist() == []


def test_representative_is_the_weighted_parameter_average_of_members() -> None:
    arrays = [
        {"w": np.array([1.0, 0.0], np.float32)},
        {"w": np.array([3.0, 4.0], np.float32)},
        {"w": np.array([9.0, 9.0], np.float32)},
    ]
    reps, masses = cluster_representatives(arrays, np.array([0, 0, 1]), [1.0, 3.0, 2.0])
    np.testing.assert_allclose(reps[0]["w"], [2.5, 3.0])
    np.testing.assert_allclose(reps[1]["w"], [9.0, 9.0])
    np.testing.assert_allclose(masses, [4.0, 2.0])


def test_signatures_tell_different_generators_apart_and_same_ones_not() -> None:
    z, y = probe_batch(0, num_classes=3, probe_size=8, noise_dim=4)
    gens = []
    for seed in (1, 1, 2):
        torch.manual_seed(seed)
        gens.append(get_arrays(FeatureGenerator(4, 3, 16, {"acc": 5, "gyro": 6})))
    work = FeatureGenerator(4, 3, 16, {"acc": 5, "gyro": 6})
    sig = generator_signatures(work, gens, z, y)
    assert sig.shape == (3, 8 * 11)
    assert sig[0].tobytes() == sig[1].tobytes() and not np.allclose(sig[0], sig[2])


def test_probe_batch_is_fixed_by_seed_and_covers_every_class() -> None:
    z1, y1 = probe_batch(4, num_classes=6, probe_size=3, noise_dim=2)
    z2, _ = probe_batch(4, num_classes=6, probe_size=3, noise_dim=2)
    assert torch.equal(z1, z2) and sorted(y1.tolist()) == list(range(6))
